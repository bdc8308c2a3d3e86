"""What `bisector status` shows: the pause and last rollback (`rollback.entry`), and of
the daemon: running or not, last good, recent history; as a document and as lines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from bisector.config import Config
from bisector.daemon.service import DAEMON_LOCK
from bisector.guard.rules import show_value, wire
from bisector.store.daemon_state import DaemonState
from bisector.store.guard_state import BisectRequest, GuardState
from rollback.entry import control_status
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
        "last_good": None
        if good is None
        else {"ref": good.ref, "commit": good.sha, "since": _iso(good.since)},
        "last_cycle": None
        if not cycles
        else {
            "id": cycles[0].id,
            "outcome": cycles[0].outcome,
            "status": cycles[0].status,
            "finished": _iso(cycles[0].finished),
        },
        "cycles": [
            {
                "id": c.id,
                "started": _iso(c.started),
                "finished": _iso(c.finished),
                "status": c.status,
                "outcome": c.outcome,
            }
            for c in cycles
        ],
        "ranges": [
            {
                "good": r.good_sha,
                "bad": r.bad_sha,
                "phase": r.phase,
                "status": r.status,
                "culprit": r.culprit,
                "run_id": r.run_id,
            }
            for r in ranges
        ],
    }


def status_document(repo: Path, cfg: Config) -> dict[str, Any]:
    """The `bisector status --json` document: `control_status` plus a `daemon` entry."""
    doc = control_status(repo, cfg)
    doc["daemon"] = daemon_status(repo.resolve(), cfg)
    if cfg.guard is not None:  # only with a guard section: other documents stay as they were
        doc["guard"] = guard_status(repo.resolve(), cfg)
    return doc


def guard_status(repo: Path, cfg: Config) -> dict[str, Any]:
    """Each check's last value, state and last action, and the last evaluation."""
    store = repo / cfg.snapshots.store
    with GuardState(store) as state:
        meta = state.meta()
        rows = state.checks()
        request = state.bisect_request()
    return {
        "bisect_after_rollback": None
        if request is None
        else {
            "good": request.good,
            "live": request.live,
            "requested": _iso(request.requested),
            "pending": _pending(store, request),
        },
        "last_evaluation": _iso(meta.last_eval),
        "outcome": meta.outcome,
        "blind_evaluations": meta.blind_streak,
        "checks": [
            {
                "name": r.name,
                "state": r.state,
                "value": wire(r.value),
                "reason": r.reason,
                "updated": _iso(r.updated),
                "last_action": r.last_action,
                "action_at": _iso(r.action_at),
            }
            for r in rows
        ],
    }


def _pending(store: Path, request: BisectRequest) -> str:
    """What the request waits for: `bisection` (to run, or to resume), or `alert` (the
    bisection is over, or could not be made: only its alert is owed, kept on the request
    or, naming a culprit, by the range the guard's rollback was for)."""
    if request.alert is not None:
        return "alert"
    with DaemonState(store) as state:
        owed = state.owed_alerts()
    by_guard = ((r.detail.get("rollback") or {}) for r in owed)
    if any(a.get("status") == "by_guard" and a.get("to") == request.good for a in by_guard):
        return "alert"
    return "bisection"


def guard_lines(g: dict[str, Any]) -> list[str]:
    lines = [
        f"guard: {g['outcome'] or 'never evaluated'}"
        + (f" at {g['last_evaluation']}" if g["last_evaluation"] else "")
        + (f", blind {g['blind_evaluations']} time(s) in a row" if g["blind_evaluations"] else "")
    ]
    pending = g.get("bisect_after_rollback")
    if pending:
        what = (
            "alert of the bisection after the rollback waiting for a webhook"
            if pending.get("pending") == "alert"
            else "to bisect after the rollback"
        )
        lines.append(
            f"  {what}: {pending['good']}..{pending['live'] or 'newest release'}"
            f" (requested {pending['requested']})"
        )
    for c in g["checks"]:
        value = show_value(c["value"])
        why = f": {c['reason']}" if c["reason"] else ""
        action = f"; last action {c['last_action']} at {c['action_at']}" if c["last_action"] else ""
        lines.append(f"  {c['name']}: {c['state']} (value {value}){why}{action}")
    return lines


def status_lines(doc: dict[str, Any]) -> list[str]:
    """Human-readable lines of a `status_document` (the CLI prints them on stderr)."""
    lines: list[str] = []
    if doc["recovered"]:
        lines.append(f"recovered: {doc['recovered']}")
    if doc["paused"]:
        lines.append(f"PAUSED since {doc['since']} by {doc['by']}: {doc['reason']}")
    else:
        lines.append("not paused")
    last = doc["last_rollback"]
    if last is None:
        lines.append("last rollback: none")
    else:
        why = f" ({last['reason']})" if last.get("reason") else ""
        lines.append(
            f"last rollback: {last['at']} {last['target']} -> {last['to']}: {last['status']}{why}"
        )
    live = doc.get("target")
    if live is not None:
        shown = live["live"] if live["live"] is not None else "none written by bisector yet"
        lines.append(f"target: {live['path']} ({live['kind']}), live set: {shown}")
        if live["rollback_running"]:
            lines.append("a rollback is running now")
        if live["drift"]:
            lines.append("drifted: " + ", ".join(live["drift"]))
    lines += daemon_lines(doc["daemon"])
    return [*lines, *guard_lines(doc["guard"])] if "guard" in doc else lines


def daemon_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"daemon: {'running' if d['running'] else 'not running'}"]
    good = d["last_good"]
    lines.append(
        f"last known good: {good['ref']} ({good['commit'][:10]})"
        if good
        else "last known good: none yet"
    )
    for c in d["cycles"]:
        lines.append(f"  cycle {c['id']} {c['started']} {c['status']}: {c['outcome'] or '-'}")
    for r in d["ranges"]:
        lines.append(
            f"  range {r['good'][:10]}..{r['bad'][:10]}: {r['phase']} {r['status'] or ''} "
            f"{('culprit ' + r['culprit'][:10]) if r['culprit'] else ''} run {r['run_id'] or '-'}".rstrip()
        )
    return lines
