"""Which live paths a rollback may replace: never the repository, the store, or above them.

A rollback replaces the target's name with a symlink and adopts whatever folder was
there. Pointed at the repository (`target: ''` or `.`), at a folder holding it or the
store, or at a file or device, that would destroy what bisector itself works on, so
these are refused before anything is touched. The paths are compared resolved, with
symlinks followed: `../repo-link` is the repository too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bisector.errors import RollbackError

_HINT = "point rollback.target (or --target) at the live config folder of the service, outside the repository"

_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a folder")


def _covers(candidate: Path, protected: Path) -> bool:
    """True when `candidate` is `protected` or one of the folders above it."""
    return candidate == protected or candidate in protected.parents


def check_location(live: Path, repo: Path, store: Path) -> None:
    """Refuse a target that is, or contains, the repository or the store."""
    protected = {"the repository": Path(os.path.realpath(repo)), "the bisector store": Path(os.path.realpath(store))}
    absolute = Path(os.path.abspath(live))
    if absolute.parent == absolute:
        raise RollbackError("the rollback target cannot be the root folder", hint=_HINT)
    # The name that is swapped (its folder resolved), and what it points to now.
    swapped = Path(os.path.realpath(absolute.parent)) / absolute.name
    pointed = Path(os.path.realpath(absolute))
    for what, path in protected.items():
        if _covers(swapped, path) or _covers(pointed, path):
            where = "is" if swapped == path or pointed == path else "contains"
            raise RollbackError(f"rollback target {live} {where} {what} ({path}); refusing to replace it", hint=_HINT)


def check_kind(live: Path) -> None:
    """Refuse a target that exists and is not a folder (or a symlink to one)."""
    try:
        st = os.lstat(live)
    except FileNotFoundError:
        return  # created by the first rollback
    except OSError as exc:
        raise RollbackError(f"cannot inspect the rollback target {live}: {exc.strerror or exc}", hint=_HINT) from exc
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
            f"rollback target {live} is a symlink to {_kind(pointed.st_mode)}, not a folder", hint=_HINT,
        )
    raise RollbackError(f"rollback target {live} is {_kind(st.st_mode)}, not a folder", hint=_HINT)


def check_target(live: Path, repo: Path, store: Path) -> Path:
    """`live` when a rollback may replace it; raises `RollbackError` naming why not."""
    check_location(live, repo, store)
    check_kind(live)
    return live
