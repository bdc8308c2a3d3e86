"""Which live paths a rollback may replace: nothing in, at or above the repository or the store.

A rollback replaces the target's name with a symlink and adopts whatever folder was
there. Pointed at the repository (`target: ''` or `.`), at a folder holding it or the
store, or at a file or device, that would destroy what bisector itself works on, so
these are refused before anything is touched. So is anything inside the repository's
work tree or the store: a tracked folder (`configs`) would show as deleted in git, and a
folder of the store (`.bisector/worktrees`) is emptied by the next run, taking the live
set it now points to with it. The paths are compared resolved, with symlinks followed:
`../repo-link` is the repository too, and a link into it is inside it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bisector.errors import RollbackError

_HINT = (
    "point rollback.target (or --target) at the live config folder the service reads, "
    "outside the repository and the bisector store"
)

_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a folder")


def _relation(candidate: Path, protected: Path) -> str | None:
    """How `candidate` overlaps `protected` ("is", "contains", "is inside"), or None."""
    if candidate == protected:
        return "is"
    if candidate in protected.parents:
        return "contains"
    if protected in candidate.parents:
        return "is inside"
    return None


def check_location(live: Path, repo: Path, store: Path) -> None:
    """Refuse a target that is, contains or is inside the repository or the store.

    `repo` is the work tree's root (bisector opens it without searching parent folders).
    A target that does not exist yet is judged by where it would be created: its folder
    is resolved as far as it exists, so `repo/new/live` is inside the repository.
    """
    protected = {
        "the repository": Path(os.path.realpath(repo)),
        "the bisector store": Path(os.path.realpath(store)),
    }
    absolute = Path(os.path.abspath(live))
    if absolute.parent == absolute:
        raise RollbackError("the rollback target cannot be the root folder", hint=_HINT)
    # The name that is swapped (its folder resolved), and what it points to now: a link
    # into the repository or the store means the service reads files that git or the next
    # run rewrites under it, and the first rollback would read them as the live set.
    swapped = Path(os.path.realpath(absolute.parent)) / absolute.name
    pointed = Path(os.path.realpath(absolute))
    found = [
        (what, path, rel, resolved)
        for what, path in protected.items()
        for resolved in dict.fromkeys((swapped, pointed))
        if (rel := _relation(resolved, path)) is not None
    ]
    if not found:
        return
    # Name the plainest reason: "is" before "contains" (the repository first, as the store
    # usually sits in it), and for "is inside" the innermost of the two (the store).
    rank = {"is": 0, "contains": 1, "is inside": 2}
    what, path, rel, resolved = min(
        found, key=lambda f: (rank[f[2]], -len(f[1].parts) if f[2] == "is inside" else 0)
    )
    via = "" if resolved == absolute else f" (resolved: {resolved})"
    raise RollbackError(
        f"rollback target {live}{via} {rel} {what} ({path}); refusing to replace it",
        hint=_HINT,
    )


def check_kind(live: Path) -> None:
    """Refuse a target that exists and is not a folder (or a symlink to one)."""
    try:
        st = os.lstat(live)
    except FileNotFoundError:
        return  # created by the first rollback
    except OSError as exc:
        raise RollbackError(
            f"cannot inspect the rollback target {live}: {exc.strerror or exc}", hint=_HINT
        ) from exc
    if stat.S_ISDIR(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        try:
            pointed = os.stat(live)
        except OSError:
            return  # a dangling link is replaced like a missing target
        if stat.S_ISDIR(pointed.st_mode):
            return
        raise RollbackError(
            f"rollback target {live} is a symlink to {_kind(pointed.st_mode)}, not a folder",
            hint=_HINT,
        )
    raise RollbackError(f"rollback target {live} is {_kind(st.st_mode)}, not a folder", hint=_HINT)


def check_target(live: Path, repo: Path, store: Path) -> Path:
    """`live` when a rollback may replace it; raises `RollbackError` naming why not."""
    check_location(live, repo, store)
    check_kind(live)
    return live
