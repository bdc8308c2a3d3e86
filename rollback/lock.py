"""The one lock that keeps two rollbacks, or a rollback and the daemon, apart.

flock(2) on an open file: the kernel drops it when the holder exits, however it exits
(SIGKILL included), so a crash never leaves a stale lock behind. The holder's pid is
written into the file only to make the refusal message useful.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bisector.errors import RollbackError


class LockedError(RollbackError):
    """Another bisector process holds the lock."""


@contextmanager
def exclusive_lock(path: Path, what: str = "a rollback or the daemon") -> Iterator[None]:
    """Hold the lock at `path` for the block; raise `LockedError` at once if it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LockedError(
                f"{what} is already running (pid {holder}, lock {path})",
                hint="wait for it to finish; the lock is released when that process exits",
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def try_lock(path: Path) -> bool:
    """True when nobody holds the lock now (a hint only: it may be taken a moment later)."""
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)
