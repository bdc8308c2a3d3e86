"""Build each environment key at most once at a time, from any thread.

`prefetch` threads and `prepare` may ask for the same key together: the first caller
builds, the others wait on its future; a BuildError is remembered for the rest of the
run, so later commits with that key fail at once instead of rebuilding a broken set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from bisector.errors import BuildError

T = TypeVar("T")


class BuildOnce(Generic[T]):
    def __init__(self, lock: threading.Lock | threading.RLock) -> None:
        self._lock = lock  # the builder's own lock, so its other state moves with this
        self.building: dict[str, Future[T]] = {}
        self.failed: dict[str, BuildError] = {}

    def get(self, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self.failed:
                raise self.failed[key]
            future = self.building.get(key)
            owner = future is None
            if future is None:
                future = self.building[key] = Future()
        if not owner:
            return future.result()
        try:
            value = build()
        except BaseException as exc:
            with self._lock:
                del self.building[key]
                if isinstance(exc, BuildError):
                    self.failed[key] = exc
            future.set_exception(exc)
            raise
        with self._lock:
            del self.building[key]
        future.set_result(value)
        return value
