"""The guard inside the daemon: one evaluation every `guard.interval`, in a thread of its own.

The same evaluation as `bisector guard` (`Guardian.evaluate`: a paused bisector guards
nothing, a held breach rolls back once, alerts once and pauses), beside the cron cycles
of the same process. A thread rather than a scheduler job: an evaluation that outlasts
its interval (a slow Prometheus, a rollback's health check) simply delays the next one.

After a guard rollback with `guard.bisect_after_rollback`, the guard journals a request
(`GuardState.bisect_request`); this loop starts the bisection (`after_rollback`) in a
second thread, so evaluations go on while it measures. The request stays in the journal
until a webhook took the bisection's alert, so one killed or stopped is finished after a
restart.

SIGTERM sets `stop.STOP`: the loop ends after the evaluation in progress, the bisection
at its next trial boundary; `join` waits for both.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import bisector.daemon.stop as stop
from bisector.config import load_config
from bisector.daemon.after_rollback import run_after_rollback
from bisector.errors import BisectorError
from bisector.guard.service import Guardian
from bisector.log import get_logger
from bisector.store.guard_state import GuardState

log = get_logger("bisector.daemon")


class GuardLoop:
    def __init__(self, repo: Path, config: Path | None, interval_s: float) -> None:
        self.repo, self.config, self.interval_s = repo, config, interval_s
        self.thread = threading.Thread(target=self._run, name="bisector-guard")
        self.bisecting: threading.Thread | None = None

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.bisecting is not None:
            self.bisecting.join()

    def _run(self) -> None:
        log.info("daemon.guard.started", interval_s=self.interval_s)
        while not stop.STOP.is_set():
            started = time.monotonic()
            self.tick()
            stop.STOP.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        log.info("daemon.guard.stopped")

    def tick(self) -> None:
        """One evaluation (errors logged, never raised: the loop must outlive them)."""
        try:
            cfg = load_config(self.repo, self.config)  # as each cycle does: edits apply
            if cfg.guard is None:
                return
            Guardian(self.repo, cfg).evaluate()
            with GuardState(self.repo / cfg.snapshots.store) as state:
                pending = state.bisect_request()
        except BisectorError as exc:
            log.error("daemon.guard.error", error=exc.message, hint=exc.hint)
            return
        except Exception as exc:  # a bug must not end the guard: log it and look again
            log.exception("daemon.guard.failed", error=type(exc).__name__)
            return
        if pending is not None and not stop.STOP.is_set():
            if self.bisecting is None or not self.bisecting.is_alive():
                self.bisecting = threading.Thread(
                    target=self._bisect, name="bisector-after-rollback"
                )
                self.bisecting.start()

    def _bisect(self) -> None:
        try:
            run_after_rollback(self.repo, self.config)
        except Exception as exc:  # logged; the request stays for the next tick
            log.exception("daemon.after_rollback.failed", error=type(exc).__name__)
