"""`guard.bisect_after_rollback`: after the guard's rollback, bisect (rolled back to, released).

The guard journals a request when its rollback was applied (`GuardState.bisect_request`:
the ref rolled back to, the label of the set that was live). The daemon then bisects
from that ref to the release that was live (else the newest release tag after it, else
the branch head), so the guard's alert is followed by the culprit: one `bisect` alert
naming what was found, that the guard rolled back, and the report.

It runs although the guard paused bisector: it is the rest of the breach's response,
measures and alerts, and never touches the live configs (the daemon's policy does not
run on it). It does not move the last known good either. The range is journaled like a
cycle's, so a later cycle over the same range finds it handled; the request is dropped
only once its alert is sent, so a bisection stopped by SIGTERM or a kill is resumed after
a restart. An alert no webhook took is sent again by the next tick, nothing run again:
a culprit's stays with its `acted` range; one that is no range's (the bisection could
not be made, or reproduced nothing) is kept on the request (`keep_bisect_alert`). The
not-reproduced alert is kept there before its range is marked `done`, so that a kill
before it is sent leaves it owed, not the request handled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import bisector.daemon.stop as stop
from bisector.alerts import AlertMessage, delivered
from bisector.config import Config, load_config
from bisector.core.types import Commit, Status
from bisector.daemon.alert_text import report_link
from bisector.daemon.cycle import Cycle, CycleResult, Seams
from bisector.errors import BisectorError, GitError
from bisector.gitrepo import GitRepo
from bisector.log import get_logger
from bisector.releases import label_of
from bisector.store.control import ControlStore
from bisector.store.daemon_state import DaemonState, LastGood, RangeRow
from bisector.store.guard_state import BisectRequest, GuardState
from bisector.store.runlock import RunLockedError, run_lock
from rollback.lock import LockedError

log = get_logger("bisector.daemon")

# Held while a bisection after a rollback runs; the daemon's shutdown waits on it.
RUNNING = threading.Lock()


def released(git: GitRepo, good: Commit, live: str | None, cfg: Config) -> tuple[Commit, str]:
    """The bad end: the set that was live, else the newest release tag, else the head.

    :raises GitError: nothing after `good` to bisect.
    """
    candidates: list[str] = []
    if live:
        candidates.append(live)
    candidates += [t.name for t in reversed(git.tags())]  # newest first
    d = cfg.daemon
    candidates.append(f"{d.remote}/{d.branch}" if d.remote else d.branch)
    for ref in candidates:
        try:
            commit = git.resolve(ref)
        except BisectorError:
            continue  # a live label that is not a ref (a snapshot's name), a gone branch
        if commit.sha != good.sha and git.is_ancestor(good.sha, commit.sha):
            return commit, ref if ref == live else label_of(git, commit)
    raise GitError(
        f"no release after {good.sha[:10]} to bisect after the rollback",
        hint="tag the release that was live, or set daemon.branch",
    )


def bisect_once(
    cycle: Cycle, request: BisectRequest, control: ControlStore
) -> tuple[CycleResult, AlertMessage | None]:
    """The bisection and, for a culprit, its range's alert; with the alert still to send
    when it is no range's (the regression not reproduced), else None."""
    with GitRepo(cycle.repo) as git:
        good = git.resolve(request.good)
        bad, bad_label = released(git, good, request.live, cycle.cfg)
    last_good = LastGood(good.sha, request.good, time.time())
    row = cycle.state.range(good.sha, bad.sha)
    if row is not None and row.phase == "done":
        log.info("daemon.after_rollback.already_handled", good=good.sha, bad=bad.sha)
        return CycleResult(
            "already_handled", bad.sha, good.sha, detail={"run_id": row.run_id}
        ), None
    if row is None or row.phase == "bisecting":
        row = cycle.bisect_range(
            last_good, bad, bad_label, moves_last_good=False, on_fine=_keep_alert(cycle, request)
        )
    action = {"status": "by_guard", "to": request.good, "paused": control.pause_state().paused}
    if row.status == Status.NOT_REPRODUCED.value:
        fine = CycleResult("fine", bad.sha, good.sha, detail={"run_id": row.run_id})
        return fine, _not_reproduced(row, cycle.cfg)
    detail: dict[str, Any] = {**row.detail, "rollback": action}
    cycle.state.set_range(row.good_sha, row.bad_sha, "acted", detail=detail)
    # Undelivered: the range stays `acted` and so does the request (`run_after_rollback`):
    # the next tick sends the alert again, measuring nothing twice.
    alert = cycle.alerts.close(
        replace(row, phase="acted", detail=detail), request.good, retry="next tick"
    )
    return CycleResult(
        "regression",
        bad.sha,
        good.sha,
        detail={"run_id": row.run_id, "status": row.status, "culprit": row.culprit, "alert": alert},
    ), None


def _keep_alert(cycle: Cycle, request: BisectRequest) -> Callable[[RangeRow], None]:
    """The not-reproduced alert goes on the request before its range is marked `done`: a
    kill before a webhook takes it leaves it owed, where the `done` range alone would make
    the restart find the request handled and drop it, the alert never sent."""

    def keep(fine: RangeRow) -> None:
        with GuardState(cycle.repo / cycle.cfg.snapshots.store) as guard:
            guard.keep_bisect_alert(request.requested, _not_reproduced(fine, cycle.cfg).record())

    return keep


def _not_reproduced(row: RangeRow, cfg: Config) -> AlertMessage:
    good, bad = row.detail.get("good_ref"), row.detail.get("bad_ref")
    link = report_link(row.detail.get("report"), row.run_id, cfg.daemon.report_url)
    return AlertMessage(
        text=f"bisector: after the guard's rollback to {good}, the benchmark does not reproduce "
        f"a regression between {good} and {bad} (run {row.run_id}): the cause may lie outside "
        "the code and configs (traffic, hardware)" + (f"; report {link}" if link else ""),
        step="bisect",
        reason=Status.NOT_REPRODUCED.value,
        extra={k: str(v) for k, v in (("run_id", row.run_id), ("report", link)) if v},
    )


def run_after_rollback(
    repo: Path, config: Path | None, seams: Seams | None = None
) -> CycleResult | None:
    """Bisect the guard's pending request, if any; None when there is none."""
    seams = seams or Seams()
    repo = repo.resolve()
    cfg = load_config(repo, config)
    store = repo / cfg.snapshots.store
    with GuardState(store) as guard:
        request = guard.bisect_request()
    if request is None:
        return None
    message: AlertMessage | None = None  # the alert to send that is no range's
    if request.alert is not None:  # bisected already: only its alert is left to send
        message = AlertMessage.from_record(request.alert, step="bisect")
        result = CycleResult("already_handled")
    else:
        with (
            RUNNING,
            DaemonState(store) as state,
            ControlStore.for_repo(repo, cfg.snapshots.store) as control,
        ):
            log.info("daemon.after_rollback.start", good=request.good, live=request.live)
            try:
                with run_lock(store, what="a bisection"):
                    cycle = Cycle(repo, config, cfg, state, control, seams)
                    result, message = bisect_once(cycle, request, control)
            except (LockedError, RunLockedError) as exc:  # a cycle bisects: the next tick retries
                log.warning("daemon.after_rollback.busy", reason=exc.message)
                return CycleResult("busy", detail={"reason": exc.message})
            except stop.Abandoned:  # SIGTERM: the request stays, the next start resumes the run
                log.warning("daemon.after_rollback.abandoned")
                return CycleResult("abandoned")
            except BisectorError as exc:
                log.error("daemon.after_rollback.error", error=exc.message, hint=exc.hint)
                result = CycleResult("error", detail={"error": exc.message})
                message = _not_made(request, exc)
    if message is not None:
        alert = "sent" if delivered(seams.alert(cfg.daemon.alerts, message)) else "undelivered"
        result = replace(result, detail={**result.detail, "alert": alert})
    with GuardState(store) as guard:
        if result.detail.get("alert") != "undelivered":
            guard.clear_bisect(request.requested)
        elif message is not None:  # else the `acted` range keeps it
            log.error("daemon.alert.undelivered", reason=message.reason, retry="next tick")
            guard.keep_bisect_alert(request.requested, message.record())
    log.info("daemon.after_rollback.end", **result.to_json())
    return result


def _not_made(request: BisectRequest, exc: BisectorError) -> AlertMessage:
    return AlertMessage(
        text=f"bisector: the bisection after the guard's rollback to {request.good} "
        f"could not be made: {exc.message}",
        step="bisect",
        reason=exc.message,
    )
