"""The run lock: one bisection (a daemon cycle, a `bisector run`) per store at a time.

It is deliberately not the rollback lock (`<store>/bisector.lock`): a bisection holds
this one for hours, and an emergency `bisector rollback` must never wait behind it. The
rollback lock is held only for the swap itself (see docs/rollback.md).

flock(2) on an open file: the kernel drops it when the holder exits, however it exits
(SIGKILL included), so a crash never leaves a stale lock behind. The holder's pid is
written into the file so that a refusal can name it.

Re-entrant in the thread that holds it (a daemon cycle holds it around the
`run_bisection` that takes it again); any other thread or process is refused. `RunLock`
is the form `bisector run` and isolation take: its refusal reads
`another bisector run (pid N) is using <store>`.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType

from bisector.errors import BisectorError

RUN_LOCK_NAME = "run.lock"

_held: dict[tuple[Path, int], int] = {}  # (lock path, thread) -> how many times entered


class RunLockedError(BisectorError):
    """Another process runs a bisection on this store."""

    def __init__(self, message: str, *, hint: str | None = None, pid: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.pid = pid


def run_lock_path(store: Path) -> Path:
    return store / RUN_LOCK_NAME


def holder_pid(path: Path) -> int | None:
    """The pid recorded by the last holder (None when unknown; it may have exited since)."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def run_lock(store: Path, what: str = "a bisection") -> Iterator[None]:
    """Hold `<store>/run.lock` for the block; raise `RunLockedError` at once if it is taken."""
    path = run_lock_path(store)
    mine = (path.absolute(), threading.get_ident())
    if mine in _held:  # this thread holds it already
        _held[mine] += 1
        try:
            yield
        finally:
            _held[mine] -= 1
        return
    try:
        store.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BisectorError(
            f"cannot open the run lock {path}: {exc.strerror or exc}",
            hint="check the permissions of the store folder (snapshots.store)",
        ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raw = os.pread(fd, 32, 0).decode(errors="replace").strip()
            pid = int(raw) if raw.isdigit() else None
            raise RunLockedError(
                f"{what} is already running on this store (pid {raw or '?'}, lock {path})",
                hint="wait for it to finish; the lock is released when that process exits",
                pid=pid,
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[mine] = 1
        try:
            yield
        finally:
            del _held[mine]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class RunLock:
    """`with RunLock(store):` holds the run lock for a `bisector run` (or an isolation);
    acquiring never waits.

    :raises RunLockedError: another run holds it (its pid is named).
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self._held: AbstractContextManager[None] | None = None

    def __enter__(self) -> RunLock:
        held = run_lock(self.store, what="a bisector run")
        try:
            held.__enter__()
        except RunLockedError as exc:
            raise RunLockedError(
                f"another bisector run (pid {exc.pid if exc.pid is not None else '?'}) is using {self.store}",
                hint="wait for it to finish (the lock is released when that process exits), "
                     "or give this run its own store (`snapshots.store`)",
                pid=exc.pid,
            ) from None
        self._held = held
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(et, ev, tb)
