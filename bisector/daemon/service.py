"""The daemon process: single-instance lock, recovery, metrics, signals, the schedule.

APScheduler 3.x runs the cycle by its import path on the cron schedule of
`daemon.schedule`, with a misfire grace of hours (the library's default of one second
would silently skip the night's run after a slow start) and coalescing, one at a time.
SIGTERM/SIGINT stop the scheduler and ask the running cycle to abandon its step; the
process exits once that cycle has returned. With a `guard:` section the guard runs in the
same process every `guard.interval` (`guarding.GuardLoop`); the same signal stops it after
its evaluation in progress (and a bisection after a rollback at its next trial boundary).
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import bisector.daemon.cycle as cycle
import bisector.daemon.metrics as metrics
import bisector.daemon.stop as stop
from bisector.config import load_config
from bisector.daemon.benchcheck import check_head
from bisector.daemon.guarding import GuardLoop
from bisector.errors import ConfigError
from bisector.log import get_logger
from bisector.store.control import ControlStore
from bisector.store.daemon_state import DaemonState
from rollback.entry import recover_for
from rollback.lock import exclusive_lock

log = get_logger("bisector.daemon")

DAEMON_LOCK = "daemon.lock"
JOB = "bisector.daemon.cycle:run_cycle"
MISFIRE_GRACE_S = 6 * 3600


@contextmanager
def _on_signals(scheduler: Any | None) -> Iterator[None]:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.warning("daemon.stopping", signal=signal.Signals(signum).name)
        stop.STOP.set()
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _scheduler(repo: Path, config: Path | None, schedule: str, resume_now: bool) -> Any:
    from apscheduler.schedulers.blocking import BlockingScheduler

    from bisector.plumbing.crontab import crontab_trigger

    try:
        trigger = crontab_trigger(schedule)
    except ValueError as exc:
        raise ConfigError(
            f"daemon.schedule {schedule!r}: {exc}", hint='a crontab line, e.g. "0 2 * * *"'
        ) from exc
    scheduler = BlockingScheduler(
        job_defaults={"misfire_grace_time": MISFIRE_GRACE_S, "coalesce": True, "max_instances": 1}
    )
    extra: dict[str, Any] = {}
    if resume_now:  # the last cycle was killed: finish it now, not tomorrow night
        extra["next_run_time"] = dt.datetime.now(dt.UTC)
    scheduler.add_job(
        JOB,
        trigger,
        id="cycle",
        name="bisector cycle",
        replace_existing=True,
        kwargs={"repo": str(repo), "config": str(config) if config else None},
        misfire_grace_time=MISFIRE_GRACE_S,
        coalesce=True,
        max_instances=1,
        **extra,
    )
    return scheduler


def _serve_metrics(port: int, store: Path) -> Any:
    try:
        return metrics.serve(port, store)
    except OSError as exc:  # in use, or a privileged port
        raise ConfigError(
            f"daemon.metrics_port {port}: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
            hint="pick a free port, or 0 to turn the metrics endpoint off",
        ) from exc


def run_daemon(repo: Path, config: Path | None = None, *, once: bool = False) -> int:
    """Run the daemon (or one cycle with `once`); returns the exit code.

    :raises LockedError: another daemon holds `<store>/daemon.lock`.
    """
    repo = repo.resolve()
    config = config.resolve() if config is not None else None
    cfg = load_config(repo, config)
    check_head(repo, cfg)  # before the lock: a config problem writes nothing
    store = repo / cfg.snapshots.store
    stop.STOP.clear()
    with exclusive_lock(store / DAEMON_LOCK, what="the bisector daemon"):
        with ControlStore.for_repo(repo, cfg.snapshots.store) as control:
            recovered = recover_for(repo, cfg, control)
            if recovered is not None:
                log.warning(
                    "daemon.recovered_rollback",
                    outcome=recovered.outcome,
                    message=recovered.message,
                )
        with DaemonState(store) as state:
            resume_now = state.interrupted_pending()
        port = cfg.daemon.metrics_port
        server = _serve_metrics(port, store) if port else None
        try:
            if once:
                with _on_signals(None):
                    result = cycle.execute(repo, config)
                return 1 if result.outcome == "error" else 0
            scheduler = _scheduler(repo, config, cfg.daemon.schedule, resume_now)
            guard = GuardLoop(repo, config, cfg.guard.interval) if cfg.guard else None
            with _on_signals(scheduler):
                log.info(
                    "daemon.started",
                    schedule=cfg.daemon.schedule,
                    metrics_port=port,
                    resume_now=resume_now,
                    guard_interval_s=cfg.guard.interval if cfg.guard else None,
                )
                if guard is not None:
                    guard.start()
                try:
                    scheduler.start()  # blocks until a signal shuts it down
                finally:
                    stop.STOP.set()  # also when the scheduler failed: the guard stops too
                    if guard is not None:  # its evaluation, then its bisection (if any)
                        guard.join()
                with cycle.RUNNING:  # let the running cycle reach a step boundary and return
                    pass
            log.info("daemon.stopped")
            return 0
        finally:
            if server is not None:
                server.shutdown()
