"""Detached worktrees of candidates under `<store>/worktrees/<sha>`, owned by one run.

Only one run uses a store at a time (`bisector.store.runlock`), so whatever is under
`<store>/worktrees` when a run starts was left by an earlier, killed run. The new run
adopts it: git's records of vanished worktrees are pruned, a folder that is not an
intact worktree is removed at once, and an intact one is reused when a candidate at its
commit is asked for (no tracked file modified). Leaving the context removes every
worktree this object handed out or adopted, used or not.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from bisector.core.types import Commit
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
        self._owned[commit.sha] = dest
        return dest

    def release(self, commit: Commit) -> None:
        """Remove one candidate's worktree now (e.g. when the cache of checkouts is large)."""
        dest = self._owned.pop(commit.sha, None)
        if dest is not None:
            self._repo.remove_worktree(dest)

    def close(self) -> None:
        leftovers, self._adopted = self._adopted, {}
        for sha, dest in [*self._owned.items(), *leftovers.items()]:
            self._owned.pop(sha, None)
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
