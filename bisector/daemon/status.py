"""What `bisector status` shows of the daemon: running or not, last good, recent history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from bisector.config import Config
from bisector.daemon.service import DAEMON_LOCK
from bisector.daemon.state import DaemonState
from rollback.lock import try_lock


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


def daemon_status(repo: Path, cfg: Config, limit: int = 5) -> dict[str, Any]:
    store = repo / cfg.snapshots.store
    with DaemonState(store) as state:
        good = state.last_good()
        cycles = state.cycles(limit)
        ranges = state.ranges(limit)
    return {
        "running": not try_lock(store / DAEMON_LOCK),
        "last_good": None if good is None else {"ref": good.ref, "commit": good.sha, "since": _iso(good.since)},
        "last_cycle": None if not cycles else {"id": cycles[0].id, "outcome": cycles[0].outcome,
                                               "status": cycles[0].status, "finished": _iso(cycles[0].finished)},
        "cycles": [
            {"id": c.id, "started": _iso(c.started), "finished": _iso(c.finished), "status": c.status,
             "outcome": c.outcome}
            for c in cycles
        ],
        "ranges": [
            {"good": r.good_sha, "bad": r.bad_sha, "phase": r.phase, "status": r.status,
             "culprit": r.culprit, "run_id": r.run_id}
            for r in ranges
        ],
    }
