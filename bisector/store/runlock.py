"""The run lock: one bisection at a time per store.

Two runs on one store would write into one journal run and remove each other's worktrees
mid-trial, so a run holds `<store>/run.lock` for its whole bisection and a second one is
refused at once, naming the holder's pid. flock(2) on an open file: the kernel drops it
when the holder exits, however it exits (SIGKILL included), so a crash never leaves a
stale lock behind. The pid is written into the file only for that message.

The lock is re-entrant within one process (a daemon cycle may hold it around a
`run_bisection` that takes it again): flock would otherwise refuse a second open file
description of the same process.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType

from bisector.errors import BisectorError

__all__ = ["RUN_LOCK", "RunLock"]

RUN_LOCK = "run.lock"

_held: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, depth) of this process
_guard = threading.Lock()


class RunLock:
    """`with RunLock(store):` holds the store's run lock; acquiring never waits.

    :raises BisectorError: another process holds it (its pid is named).
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self.path = (store / RUN_LOCK).absolute()

    def __enter__(self) -> RunLock:
        with _guard:
            if self.path in _held:
                fd, depth = _held[self.path]
                _held[self.path] = (fd, depth + 1)
                return self
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise BisectorError(
                    f"another bisector run (pid {holder}) is using {self.store}",
                    hint="wait for it to finish (the lock is released when that process exits), "
                         "or give this run its own store (`snapshots.store`)",
                ) from None
            except BaseException:
                os.close(fd)
                raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _held[self.path] = (fd, 1)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        with _guard:
            fd, depth = _held[self.path]
            if depth > 1:
                _held[self.path] = (fd, depth - 1)
                return
            del _held[self.path]
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
