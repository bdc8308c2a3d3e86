"""The guard's durable state, in tables of its own (`guard_*`) in the run journal.

Each check's last value, state (ok / pending / breached / blind) and last action, and
the count of blind evaluations in a row: `bisector status` reads them, and a guard run
from cron (`--once`) reads them back so it alerts once per breach and once per blind spell.
An alert that no webhook took waits in `guard_alerts` until an evaluation delivers it; the
daemon's bisection after a guard rollback keeps its own on its request (`guard_bisect`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisector.store.base import SqliteFile

JOURNAL_NAME = "journal.sqlite"
# A check's states that end a breach: within its limit, or a canary that passed.
OK_STATES = ("ok", "pass")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS guard_checks (
  name TEXT PRIMARY KEY,
  state TEXT NOT NULL,             -- ok | pending | breached | blind | pass | fail | inconclusive
  value REAL,
  reason TEXT NOT NULL DEFAULT '',
  updated REAL NOT NULL,
  last_action TEXT,                -- rolled_back:<ref> | alerted | paused | rollback_failed | ...
  action_at REAL,
  ok_at REAL                       -- last seen within its limit (ok, or a passing canary)
);
CREATE TABLE IF NOT EXISTS guard_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  blind_streak INTEGER NOT NULL DEFAULT 0,
  blind_alerted INTEGER NOT NULL DEFAULT 0,
  last_eval REAL,
  outcome TEXT
);
CREATE TABLE IF NOT EXISTS guard_alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message TEXT NOT NULL,           -- the AlertMessage's fields, JSON
  queued REAL NOT NULL             -- when no webhook took it (sent again each evaluation)
);
CREATE TABLE IF NOT EXISTS guard_bisect (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  good TEXT NOT NULL,              -- the ref the guard rolled back to
  live TEXT,                       -- the label of the set that was live before it
  requested REAL NOT NULL,
  alert TEXT                       -- the bisection is over: its alert no webhook took, JSON
);
"""


@dataclass(frozen=True)
class CheckRow:
    name: str
    state: str
    value: float | None
    reason: str
    updated: float
    last_action: str | None
    action_at: float | None


@dataclass(frozen=True)
class GuardMeta:
    blind_streak: int = 0
    blind_alerted: bool = False
    last_eval: float | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class BisectRequest:
    """`guard.bisect_after_rollback`: the daemon bisects (good, the release that was live)."""

    good: str
    live: str | None
    requested: float
    # The bisection is over (it could not be made, or reproduced nothing) but no webhook
    # took its alert (`AlertMessage.record`) yet: only that is left to do.
    alert: Mapping[str, Any] | None = None


class GuardState(SqliteFile):
    """One connection to the journal file; one short transaction per call."""

    what = "guard state"
    schema = _SCHEMA

    def __init__(self, store: Path, *, read_only: bool = False) -> None:
        super().__init__(store / JOURNAL_NAME, read_only=read_only)

    def migrate(self, db: sqlite3.Connection) -> None:
        """Journals written before a request could keep its alert lack `guard_bisect.alert`;
        before a breach outlived a blind spell, `guard_checks.ok_at`."""
        if "alert" not in {row[1] for row in db.execute("PRAGMA table_info(guard_bisect)")}:
            db.execute("ALTER TABLE guard_bisect ADD COLUMN alert TEXT")
        if "ok_at" not in {row[1] for row in db.execute("PRAGMA table_info(guard_checks)")}:
            db.execute("ALTER TABLE guard_checks ADD COLUMN ok_at REAL")

    def checks(self) -> list[CheckRow]:
        try:
            rows = self._db.execute(
                "SELECT name, state, value, reason, updated, last_action, action_at FROM guard_checks ORDER BY name"
            ).fetchall()
        except (
            sqlite3.OperationalError
        ):  # a read-only journal from before the guard: no table, no rows
            return []
        return [CheckRow(*r) for r in rows]

    def check(self, name: str) -> CheckRow | None:
        return next((c for c in self.checks() if c.name == name), None)

    def record(self, name: str, state: str, value: float | None, reason: str) -> None:
        """The state seen now; the last action is kept, and when the check was last ok."""
        now = time.time()
        ok_at = now if state in OK_STATES else None
        with self._tx() as db:
            db.execute(
                "INSERT INTO guard_checks (name, state, value, reason, updated, ok_at)"
                " VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(name) DO UPDATE SET state=excluded.state, value=excluded.value,"
                " reason=excluded.reason, updated=excluded.updated,"
                " ok_at=coalesce(excluded.ok_at, guard_checks.ok_at)",
                (name, state, value, reason, now, ok_at),
            )

    def last_ok(self, name: str) -> float | None:
        """When the check was last seen ok (a canary: passing); None if not since `ok_at`
        was journaled (a new check, or a journal of an older version)."""
        row = self._db.execute("SELECT ok_at FROM guard_checks WHERE name=?", (name,)).fetchone()
        return None if row is None else row[0]

    def record_action(self, name: str, action: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE guard_checks SET last_action=?, action_at=? WHERE name=?",
                (action, time.time(), name),
            )

    def meta(self) -> GuardMeta:
        try:
            row = self._db.execute(
                "SELECT blind_streak, blind_alerted, last_eval, outcome FROM guard_meta WHERE id=1"
            ).fetchone()
        except sqlite3.OperationalError:  # see `checks`
            return GuardMeta()
        return GuardMeta() if row is None else GuardMeta(row[0], bool(row[1]), row[2], row[3])

    def set_meta(self, meta: GuardMeta) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO guard_meta (id, blind_streak, blind_alerted, last_eval, outcome)"
                " VALUES (1, ?, ?, ?, ?)",
                (meta.blind_streak, int(meta.blind_alerted), meta.last_eval, meta.outcome),
            )

    def queue_alert(self, message: dict[str, object]) -> None:
        """An alert no webhook took, to be sent again by the next evaluation."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO guard_alerts (message, queued) VALUES (?, ?)",
                (json.dumps(message), time.time()),
            )

    def queued_alerts(self) -> list[tuple[int, dict[str, Any]]]:
        """(id, message) of the alerts waiting, oldest first."""
        try:
            rows = self._db.execute("SELECT id, message FROM guard_alerts ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # see `checks`
            return []
        return [(row[0], json.loads(row[1])) for row in rows]

    def drop_alert(self, alert_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM guard_alerts WHERE id=?", (alert_id,))

    def request_bisect(self, good: str, live: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO guard_bisect (id, good, live, requested) VALUES (1, ?, ?, ?)",
                (good, live, time.time()),
            )

    def bisect_request(self) -> BisectRequest | None:
        try:  # `*`: a read-only journal of an older version has no `alert` column
            cur = self._db.execute("SELECT * FROM guard_bisect WHERE id=1")
        except sqlite3.OperationalError:  # see `checks`
            return None
        row = cur.fetchone()
        if row is None:
            return None
        r = dict(zip([c[0] for c in cur.description], row, strict=True))
        with self.reading_back("the alert of a bisection after a rollback"):
            alert = None if r.get("alert") is None else dict(json.loads(r["alert"]))
        return BisectRequest(r["good"], r["live"], r["requested"], alert)

    def keep_bisect_alert(self, requested: float, message: Mapping[str, Any]) -> None:
        """The request made at `requested` is bisected; only its alert (`message`) is owed."""
        with self._tx() as db:
            db.execute(
                "UPDATE guard_bisect SET alert=? WHERE id=1 AND requested=?",
                (json.dumps(dict(message)), requested),
            )

    def clear_bisect(self, requested: float) -> None:
        """Done with the request made at `requested` (a newer one stays)."""
        with self._tx() as db:
            db.execute("DELETE FROM guard_bisect WHERE id=1 AND requested=?", (requested,))
