"""Cancelled Ray trials not yet ended: interrupted first, forced after a grace period.

`ray.cancel(ref)` interrupts the task: the worker kills the trial's process group and
stays up for the next trial, so no new worker process has to start. A trial that has not
ended `grace_s` later is cancelled with `force=True` (the worker process is killed; its
watchdog kills the trial's processes). Until a cancelled trial ends it holds its worker.
"""

from __future__ import annotations

import time
from typing import Any

import ray


class Cancelling:
    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._due: dict[Any, float] = {}  # cancelled ref -> when to force

    def __len__(self) -> int:
        return len(self._due)

    def refs(self) -> list[Any]:
        return list(self._due)

    def add(self, ref: Any) -> None:
        ray.cancel(ref, force=False)
        self._due[ref] = time.monotonic() + self.grace_s

    def reap(self) -> None:
        """Forget the ended ones; force the ones past their grace."""
        if not self._due:
            return
        ended, _ = ray.wait(list(self._due), num_returns=len(self._due), timeout=0)
        for ref in ended:
            del self._due[ref]
        now = time.monotonic()
        for ref, deadline in list(self._due.items()):
            if now >= deadline:
                ray.cancel(ref, force=True)
                del self._due[ref]

    def force_all(self) -> None:
        """The run is over: no grace."""
        for ref in self._due:
            ray.cancel(ref, force=True)
