"""Shared value types and the Protocols the pure core works over.

Everything here is immutable. The search and the judge import only this module (and
each other), never git, docker or subprocess code.
"""

from __future__ import annotations

import enum
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class Verdict(enum.Enum):
    """What a candidate is, as far as the judge can tell."""

    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"  # untestable: build failed, exit 125, repeated failures
    UNCLEAR = "unclear"  # measured, but neither significantly like good nor like bad


class Direction(enum.Enum):
    """Which way a metric gets better."""

    LOWER = "lower"
    HIGHER = "higher"


class Status(enum.Enum):
    """Outcome of `bisector run` (the contract's `status`)."""

    FOUND = "found"
    NOT_REPRODUCED = "not_reproduced"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return {Status.FOUND: 0, Status.NOT_REPRODUCED: 3, Status.INCONCLUSIVE: 4}[self]


@dataclass(frozen=True)
class Commit:
    """A resolved commit; `sha` is the full 40-hex id."""

    sha: str
    subject: str
    author: str
    date: str  # ISO 8601, committer date
    parents: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class Tag:
    name: str
    sha: str  # the commit the tag points to (peeled)


@runtime_checkable
class Vcs(Protocol):
    """Read-only access to a repository; never touches the user's working tree."""

    root: Path

    def resolve(self, ref: str) -> Commit:
        """:raises RefError: unsafe ref (starts with '-', odd characters) or not a commit."""
        ...

    def is_ancestor(self, ancestor: str, descendant: str) -> bool: ...

    def commits_between(
        self, good: str, bad: str, *, first_parent: bool = True
    ) -> list[Commit]:
        """Commits in (good, bad], oldest first."""
        ...

    def tags_between(self, good: str, bad: str, *, first_parent: bool = True) -> list[Tag]:
        """Tags on commits in (good, bad), oldest first."""
        ...

    def tags(self) -> list[Tag]: ...

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The file's bytes from git objects, None when absent at that commit."""
        ...

    def list_files(self, commit: str) -> list[str]: ...

    def changed_paths(self, a: str, b: str) -> list[str]: ...

    def diffstat(self, a: str, b: str) -> str: ...

    def worktree(self, commit: str, dest: Path) -> AbstractContextManager[Path]:
        """A detached checkout of `commit` at `dest`, removed on exit."""
        ...

    def close(self) -> None: ...

