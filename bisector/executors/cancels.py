"""Cancelled Ray trials not yet ended: interrupted first, forced after a grace period.

`ray.cancel(ref)` interrupts the task: the worker kills the trial's process group and
stays up for the next trial, so no new worker process has to start. A trial that has not
ended `grace_s` later is cancelled with `force=True` (the worker process is killed; its
watchdog kills the trial's processes). Until a cancelled trial ends it holds its worker.

A trial that has already ended is never cancelled: `ray.cancel` racing the end of the
task it cancels can kill the driver (Ray 2.x: `Check failed: it != submissible_tasks_.end()
Tried to complete task that was not pending`, ray-project/ray#54846, fixed upstream by
ray-project/ray#54798). `ray.wait(timeout=0)` just before each cancel narrows that window
to the instant between the two calls; it cannot close it. A driver killed there leaves a
run that `bisector run` resumes from its journal (every trial journaled as it returned).
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

    def cancel(self, refs: list[Any]) -> list[Any]:
        """Interrupt the trials of `refs` still running; the ended ones, not cancelled,
        are returned for the caller to collect."""
        ended = _ended(refs)
        for ref in refs:
            if ref not in ended:
                ray.cancel(ref, force=False)
                self._due[ref] = time.monotonic() + self.grace_s
        return [ref for ref in refs if ref in ended]

    def reap(self) -> None:
        """Forget the ended ones; force the ones past their grace."""
        if not self._due:
            return
        for ref in _ended(list(self._due)):
            del self._due[ref]
        now = time.monotonic()
        late = [ref for ref, deadline in self._due.items() if now >= deadline]
        for ref in late:
            del self._due[ref]
        self._force(late)

    def force_all(self) -> None:
        """The run is over: no grace."""
        self._force(list(self._due))

    def _force(self, refs: list[Any]) -> None:
        ended = _ended(refs)  # just now: not cancelled (see the module docstring)
        for ref in refs:
            if ref not in ended:
                ray.cancel(ref, force=True)


def _ended(refs: list[Any]) -> set[Any]:
    """Those of `refs` whose task has ended, without waiting."""
    if not refs:
        return set()
    ended, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
    return set(ended)
