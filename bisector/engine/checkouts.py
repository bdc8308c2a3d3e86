"""Detached worktrees of candidates under `<store>/worktrees/<sha>`, owned by one run.

Only one run uses a store at a time (`bisector.store.runlock`), so whatever is under
`<store>/worktrees` when a run starts was left by an earlier, killed run. The new run
adopts it: git's records of vanished worktrees are pruned, a folder that is not an
intact worktree is removed at once, and an intact one is reused when a candidate at its
commit is asked for (no tracked file modified). Leaving the context removes every
worktree this object handed out or adopted, used or not.

`restore` puts back the tracked files of a worktree that a trial (or a build) changed, so
each trial of a commit starts from the commit's files; untracked files (a build's
egg-info, compiled extensions) stay. Its git calls name the worktree's own git folder
(read when the worktree is handed out): a benchmark that deleted the worktree's `.git`
file must not make git walk up to the user's repository (the store is usually inside it)
and reset the user's working tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from bisector.core.types import Commit
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.log import get_logger

log = get_logger(__name__)


def _git(dest: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(dest), *args],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def is_clean_checkout_of(dest: Path, sha: str) -> bool:
    """True when `dest` is a worktree at `sha` whose tracked files are unmodified."""
    if not (dest / ".git").is_file():  # a linked worktree has a `.git` file, not a folder
        return False
    head = _git(dest, "rev-parse", "--verify", "HEAD")
    if head is None or head.strip() != sha:
        return False
    status = _git(dest, "status", "--porcelain", "--untracked-files=no")
    return status is not None and status.strip() == ""


class Checkouts:
    """Hands out one worktree per candidate; removes them all on `close()` / context exit.

    The caller holds the store's run lock: what is under `root` now is an earlier run's.
    """

    def __init__(self, repo: GitRepo, store: Path) -> None:
        self._repo = repo
        self.root = store / "worktrees"
        self._owned: dict[str, Path] = {}
        self._git_dirs: dict[str, str] = {}  # sha -> the worktree's own git folder
        self._adopted: dict[str, Path] = {}
        self._adopt_leftovers()

    def _adopt_leftovers(self) -> None:
        """Take over the worktrees of a killed run (module docstring)."""
        if not self.root.is_dir():
            return
        _git(self._repo.root, "worktree", "prune")
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and not folder.is_symlink() and (folder / ".git").is_file():
                self._adopted[folder.name] = folder
                continue
            log.info("removing a leftover checkout", path=str(folder))
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folder.unlink(missing_ok=True)
        if self._adopted:
            log.debug(
                "adopted worktrees of an earlier run", count=len(self._adopted)
            )  # the resume line says it

    def get(self, commit: Commit) -> Path:
        """The checkout of `commit` (made, or reused when present and intact)."""
        if commit.sha in self._owned:
            return self._owned[commit.sha]
        dest = self.root / commit.sha
        self._adopted.pop(commit.sha, None)
        if is_clean_checkout_of(dest, commit.sha):
            log.debug("reusing worktree", commit=commit.short)
        else:
            self._repo.add_worktree(commit.sha, dest)
        git_dir = _git(dest, "rev-parse", "--absolute-git-dir")
        if git_dir is not None:
            self._git_dirs[commit.sha] = git_dir.strip()
        self._owned[commit.sha] = dest
        return dest

    def restore(self, commit: Commit) -> list[str]:
        """Put back the tracked files of `commit`'s worktree that differ from the commit
        (module docstring); the paths put back, none when all are intact.

        :raises BisectorError: git cannot compare or reset the worktree.
        """
        dest, git_dir = self._owned.get(commit.sha), self._git_dirs.get(commit.sha)
        if dest is None or git_dir is None:
            return []
        where = ("--git-dir", git_dir, "--work-tree", str(dest))
        changed = _git(dest, *where, "diff", "--name-only", "-z", "--no-renames", commit.sha, "--")
        if changed is None or (
            changed and _git(dest, *where, "reset", "-q", "--hard", commit.sha) is None
        ):
            raise BisectorError(
                f"cannot restore the checkout of {commit.short} at {dest}",
                hint="a trial left it so that git cannot put its files back (a leftover "
                "index.lock, permissions); each trial must start from the commit's files",
            )
        return [path for path in changed.split("\0") if path]

    def release(self, commit: Commit) -> None:
        """Remove one candidate's worktree now (e.g. when the cache of checkouts is large)."""
        dest = self._owned.pop(commit.sha, None)
        self._git_dirs.pop(commit.sha, None)
        if dest is not None:
            self._repo.remove_worktree(dest)

    def close(self) -> None:
        leftovers, self._adopted = self._adopted, {}
        for sha, dest in [*self._owned.items(), *leftovers.items()]:
            self._owned.pop(sha, None)
            self._git_dirs.pop(sha, None)
            try:
                self._repo.remove_worktree(dest)
            except Exception as exc:
                log.warning("cannot remove worktree", path=str(dest), error=str(exc))

    def __enter__(self) -> Checkouts:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
