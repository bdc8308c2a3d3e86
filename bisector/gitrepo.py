"""The git adapter (GitPython): the only module of the search that talks to git.

Refs are validated before they reach git (`refcheck.validate_ref`, pure Python): a ref that
starts with `-` could be read as an option (`--upload-pack=...`), so it is refused, as are
control characters and any name `git check-ref-format` refuses; every command that takes
a ref also gets `--end-of-options`, and none goes through a shell. Nothing here touches the user's working tree: files are
read from git objects and checkouts are detached worktrees in folders we own.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from bisector.core.types import Commit, Tag
from bisector.errors import GitError, RefError
from bisector.plumbing.worktree import bare_error, subfolder_hint
from bisector.refcheck import is_valid_ref, name_end, validate_ref

__all__ = ["GitRepo", "is_valid_ref", "validate_ref"]

_REF_KINDS = {"tags": "tag", "heads": "branch", "remotes": "remote branch"}  # git's order
_FIELD = "\x1f"
_RECORD = "\x1e"
_LOG_FORMAT = _FIELD.join(["%H", "%P", "%an <%ae>", "%cI", "%s"]) + _RECORD


def _parse_log(out: str) -> list[Commit]:
    commits: list[Commit] = []
    for record in out.split(_RECORD):
        record = record.strip("\n")
        if not record:
            continue
        sha, parents, author, date, subject = record.split(_FIELD, 4)
        commits.append(Commit(sha, subject, author, date, tuple(parents.split())))
    return commits


class GitRepo:
    """A repository opened read-only for bisection."""

    def __init__(self, root: Path) -> None:
        try:
            self._repo = git.Repo(root, search_parent_directories=False)
        except (InvalidGitRepositoryError, NoSuchPathError) as exc:
            inside = subfolder_hint(Path(root))  # a subfolder of a checkout is no repository
            raise GitError(
                f"not a git repository: {root}"
                + (" (a folder inside one, not its root)" if inside else ""),
                hint=inside or "pass --repo PATH of a git checkout",
            ) from exc
        if self._repo.bare or self._repo.working_tree_dir is None:
            # Its root would be git's own folder: `init` wrote bisector.yaml there.
            self._repo.close()
            message, hint = bare_error(Path(root))
            raise GitError(message, hint=hint)
        self.root = Path(self._repo.working_tree_dir).resolve()
        self._git = self._repo.git

    # -- plumbing -------------------------------------------------------------------

    def _run(self, *args: str) -> str:
        try:
            out: str = self._git.execute(["git", *args], strip_newline_in_stdout=False)
        except GitCommandError as exc:
            detail = (exc.stderr or "").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {detail[-1] if detail else exc.status}") from exc
        return out

    def _run_bytes(self, *args: str) -> bytes:
        try:
            out: bytes = self._git.execute(
                ["git", *args], stdout_as_string=False, strip_newline_in_stdout=False
            )
        except GitCommandError as exc:
            raise GitError(f"git {args[0]} failed: {exc.status}") from exc
        return out

    # -- refs -----------------------------------------------------------------------

    def resolve(self, ref: str) -> Commit:
        validate_ref(ref)
        try:
            # Two steps: `:/text` takes the rest of the argument as the text to search, so
            # `:/fix^{commit}` would search for "fix^{commit}"; peel the object it names.
            obj = self._git.execute(
                ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", ref]
            ).strip()
            sha = self._git.execute(
                ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{obj}^{{commit}}"]
            ).strip()
        except GitCommandError as exc:
            raise RefError(
                f"unknown ref {ref!r}: it does not name a commit in {self.root}",
                hint="list tags with `git tag`, or pass a commit id",
            ) from exc
        self._refuse_ambiguous(ref)
        out = self._run("log", "-1", f"--format={_LOG_FORMAT}", "--end-of-options", sha)
        return _parse_log(out)[0]

    def _refuse_ambiguous(self, ref: str) -> None:
        """A name that is a tag and a branch of different commits: git takes the tag with
        only a warning, and a run would bisect a range the user may not have meant."""
        end = name_end(ref)
        name = ref if end is None else ref[: end.start()]
        if not name or name.startswith("refs/"):
            return
        fulls = [f"refs/{kind}/{name}" for kind in _REF_KINDS]
        listed = self._run("for-each-ref", "--format=%(refname)", *fulls).split()
        commits: dict[str, str] = {}
        for full in (f for f in fulls if f in listed):  # a pattern matches refs below it too
            with suppress(GitCommandError):  # a tag of a tree: no commit, not a rival
                peeled = [
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    "--end-of-options",
                    f"{full}^{{commit}}",
                ]
                commits[full] = self._git.execute(["git", *peeled]).strip()
        if len(set(commits.values())) > 1:
            both = " and ".join(
                f"the {_REF_KINDS[f.split('/')[1]]} {f} ({c[:10]})" for f, c in commits.items()
            )
            raise RefError(
                f"ambiguous ref {ref!r}: {name} is both {both}",
                hint=f"pass the full name: {' or '.join(commits)}",
            )

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self._git.execute(["git", "merge-base", "--is-ancestor", ancestor, descendant])
        except GitCommandError as exc:
            if exc.status == 1:
                return False
            raise GitError(f"git merge-base failed: {exc.status}") from exc
        return True

    def topo_order(self, head: str) -> list[str]:
        """The ids of the commits reachable from `head`, newest first: every commit before
        its parents (`rev-list --topo-order`), whatever their dates say."""
        return self._run("rev-list", "--topo-order", "--end-of-options", head, "--").split()

    def check_range(self, good: Commit, bad: Commit, refs: tuple[str, str] = ("", "")) -> None:
        """`good` must be a strict ancestor of `bad`; `refs`: the refs the user gave for
        them, named when they are the same commit (a branch far back, a moved tag)."""
        if good.sha == bad.sha:
            both = f"good {refs[0]} and bad {refs[1]}" if all(refs) else "good and bad"
            raise RefError(
                f"{both} are the same commit ({good.short})",
                hint="pass an older --good or a newer --bad",
            )
        if not self.is_ancestor(good.sha, bad.sha):
            good_ref = f"{refs[0]} " if refs[0] else ""
            bad_ref = f"{refs[1]} " if refs[1] else ""
            raise RefError(
                f"good {good_ref}({good.short}) is not an ancestor of bad {bad_ref}({bad.short})",
                hint="swap --good and --bad, or pick a good ref from bad's history",
            )

    def commits_between(self, good: str, bad: str, *, first_parent: bool = True) -> list[Commit]:
        args = ["log", "--reverse", f"--format={_LOG_FORMAT}"]
        args += ["--first-parent"] if first_parent else ["--topo-order"]
        out = self._run(*args, "--end-of-options", f"{good}..{bad}")
        return _parse_log(out)

    def tags(self) -> list[Tag]:
        """The tags that name a commit (an annotated one peeled, also a tag of a tag),
        oldest created first; a tag of a tree or a blob is left out (`non_commit_tags`)."""
        return [Tag(name, sha) for name, sha in self._tag_objects() if sha is not None]

    def non_commit_tags(self) -> list[str]:
        """The names of the tags that name a tree or a blob, not a commit."""
        return [name for name, sha in self._tag_objects() if sha is None]

    def _tag_objects(self) -> list[tuple[str, str | None]]:
        """(name, the commit it names, or None for a tree or a blob), oldest first."""
        out = self._run(
            "for-each-ref",
            "--sort=creatordate",
            "--format=%(objectname)\x1f%(objecttype)\x1f%(*objectname)\x1f%(*objecttype)"
            "\x1f%(refname)",
            "refs/tags",
        )
        tags: list[tuple[str, str | None]] = []
        for line in out.splitlines():
            obj, kind, peeled, peeled_kind, full = line.split("\x1f")
            # Not %(refname:short): for a tag that is also a branch it is `tags/<name>`
            # or `<name>` as the user's core.warnAmbiguousRefs says.
            name = full.removeprefix("refs/tags/")
            sha, kind = (peeled, peeled_kind) if peeled else (obj, kind)
            if kind == "tag":  # a tag of a tag: peel it all the way
                sha = self._commit_of(full)
            tags.append((name, sha if kind in ("commit", "tag") and sha else None))
        return tags

    def _commit_of(self, full_ref: str) -> str:
        try:
            return self._git.execute(
                [
                    "git",
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    "--end-of-options",
                    f"{full_ref}^{{commit}}",
                ]
            ).strip()
        except GitCommandError:
            return ""

    def tags_between(self, good: str, bad: str, *, first_parent: bool = True) -> list[Tag]:
        order = {
            c.sha: i
            for i, c in enumerate(self.commits_between(good, bad, first_parent=first_parent))
        }
        bad_sha = self.resolve(bad).sha
        inside = [t for t in self.tags() if t.sha in order and t.sha != bad_sha]
        return sorted(inside, key=lambda t: order[t.sha])

    def current_branch(self) -> str | None:
        """The checked-out branch's short name; None on a detached HEAD."""
        try:
            name = self._git.execute(["git", "symbolic-ref", "--quiet", "--short", "HEAD"])
        except GitCommandError:
            return None
        return name.strip() or None

    def local_branches(self, *, containing: str | None = None) -> list[str]:
        """Short names of the local branches (those whose history holds `containing`)."""
        args = ["for-each-ref", "--format=%(refname:short)"]
        if containing is not None:
            args.append(f"--contains={containing}")
        try:
            return self._run(*args, "refs/heads/").split()
        except GitError:  # no commit yet: --contains has nothing to look for
            return []

    def remote_default(self, remote: str = "origin") -> str | None:
        """The branch `remote`'s HEAD names (`main` for origin/main), if the clone knows it."""
        try:
            name = self._git.execute(
                ["git", "symbolic-ref", "--quiet", "--short", f"refs/remotes/{remote}/HEAD"]
            )
        except GitCommandError:
            return None
        return name.strip().removeprefix(f"{remote}/") or None

    def rival_branches(self, tags: list[Tag]) -> dict[str, str]:
        """Of `tags`, those whose name is also a branch (local or remote) of another
        commit: tag name -> that branch's full name. `resolve` refuses such a name as
        ambiguous (`_refuse_ambiguous`); this asks git once for every tag."""
        out = self._run(
            "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/remotes"
        )
        branches = dict(line.rsplit(" ", 1) for line in out.splitlines() if " " in line)
        rivals: dict[str, str] = {}
        for tag in tags:
            for kind in ("heads", "remotes"):
                full = f"refs/{kind}/{tag.name}"
                if branches.get(full, tag.sha) != tag.sha:
                    rivals[tag.name] = full
                    break
        return rivals

    # -- content --------------------------------------------------------------------

    def read_file(self, commit: str, path: str) -> bytes | None:
        try:
            blob = self._repo.commit(commit).tree / path
        except KeyError:
            return None
        except (ValueError, git.BadName) as exc:
            raise GitError(f"cannot read {path} at {commit[:10]}: {exc}") from exc
        if blob.type != "blob":
            return None
        data: bytes = blob.data_stream.read()
        return data

    def list_files(self, commit: str) -> list[str]:
        out = self._run_bytes("ls-tree", "-r", "-z", "--name-only", "--end-of-options", commit)
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def symlinks(self, commit: str) -> set[str]:
        """Paths that are symbolic links (mode 120000) in `commit`'s tree."""
        out = self._run_bytes("ls-tree", "-r", "-z", "--end-of-options", commit)
        links: set[str] = set()
        for entry in out.split(b"\0"):
            meta, _, path = entry.partition(b"\t")
            if meta.startswith(b"120000 "):
                links.add(path.decode("utf-8", "surrogateescape"))
        return links

    def changed_paths(self, a: str, b: str) -> list[str]:
        out = self._run_bytes("diff", "--name-only", "--no-renames", "-z", a, b, "--")
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def diffstat(self, a: str, b: str) -> str:
        return self._run("diff", "--stat", a, b, "--").rstrip()

    # -- checkouts ------------------------------------------------------------------

    def add_worktree(self, commit: str, dest: Path) -> Path:
        """A detached checkout of `commit` at `dest` (kept until `remove_worktree`)."""
        if dest.exists():
            self.remove_worktree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._run("worktree", "add", "--detach", "--force", str(dest), commit)
        return dest

    def remove_worktree(self, dest: Path) -> None:
        try:
            self._git.execute(["git", "worktree", "remove", "--force", str(dest)])
        except GitCommandError:
            shutil.rmtree(dest, ignore_errors=True)
        self._git.execute(["git", "worktree", "prune"])

    @contextmanager
    def worktree(self, commit: str, dest: Path) -> Iterator[Path]:
        self.add_worktree(commit, dest)
        try:
            yield dest
        finally:
            self.remove_worktree(dest)

    def close(self) -> None:
        """Stop GitPython's persistent `cat-file` processes."""
        self._repo.close()

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
