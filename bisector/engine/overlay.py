"""A `Vcs` that also knows synthetic commits: a real commit with some files replaced.

Isolation measures states that no commit holds (the culprit's code with the parent's pins
and one upgrade applied). Each gets an id `<sha>+<what>:<hash>`; `read_file` of such an
id returns the replaced bytes, or the base commit's. Builders read requirement files
through `read_file`, so they key and build these states like any commit, and the journal
keys their trials by the id (a resumed run finds them again).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from bisector.core.types import Commit, Tag
from bisector.ports import Vcs


class OverlayVcs:
    """Delegates to `base`; synthetic ids read their replaced files first."""

    def __init__(self, base: Vcs) -> None:
        self._base = base
        self.root = base.root
        self._synthetic: dict[str, tuple[str, dict[str, bytes | None]]] = {}

    def add(self, synthetic_id: str, base_sha: str, files: Mapping[str, bytes | None]) -> None:
        self._synthetic[synthetic_id] = (base_sha, dict(files))

    def real(self, sha: str) -> str:
        """The real commit a (possibly synthetic) id stands on."""
        return self._synthetic[sha][0] if sha in self._synthetic else sha

    def read_file(self, commit: str, path: str) -> bytes | None:
        if commit in self._synthetic:
            base, files = self._synthetic[commit]
            return files[path] if path in files else self._base.read_file(base, path)
        return self._base.read_file(commit, path)

    def resolve(self, ref: str) -> Commit:
        return self._base.resolve(ref)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._base.is_ancestor(self.real(ancestor), self.real(descendant))

    def commits_between(self, good: str, bad: str, *, first_parent: bool = True) -> list[Commit]:
        return self._base.commits_between(good, bad, first_parent=first_parent)

    def tags_between(self, good: str, bad: str, *, first_parent: bool = True) -> list[Tag]:
        return self._base.tags_between(good, bad, first_parent=first_parent)

    def tags(self) -> list[Tag]:
        return self._base.tags()

    def list_files(self, commit: str) -> list[str]:
        return self._base.list_files(self.real(commit))

    def changed_paths(self, a: str, b: str) -> list[str]:
        return self._base.changed_paths(self.real(a), self.real(b))

    def diffstat(self, a: str, b: str) -> str:
        return self._base.diffstat(self.real(a), self.real(b))

    def worktree(self, commit: str, dest: Path) -> AbstractContextManager[Path]:
        return self._worktree(commit, dest)

    @contextmanager
    def _worktree(self, commit: str, dest: Path) -> Iterator[Path]:
        with self._base.worktree(self.real(commit), dest) as path:
            if commit in self._synthetic:
                for rel, data in self._synthetic[commit][1].items():
                    write_file(path / rel, data)
            yield path

    def close(self) -> None:
        """The base is closed by its owner."""


def write_file(target: Path, data: bytes | None) -> None:
    if data is None:
        target.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
