"""Persistent control state: paused or not, and the record of rollbacks.

Lives in the SQLite journal (`<repo>/<snapshots.store>/journal.sqlite`, WAL) in tables
of its own (`control_*`), so a pause survives restarts of the daemon and is shared by
every bisector process on the repository.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisector.store.base import SqliteFile

JOURNAL_NAME = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS control_pause (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  paused INTEGER NOT NULL,
  reason TEXT,
  since TEXT,
  by TEXT
);
CREATE TABLE IF NOT EXISTS control_rollbacks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  target TEXT NOT NULL,
  label TEXT NOT NULL,
  status TEXT NOT NULL,
  detail TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PauseState:
    paused: bool
    reason: str | None = None
    since: str | None = None  # ISO 8601, UTC
    by: str | None = None  # "user", "rollback", "daemon", "recovery"


@dataclass(frozen=True)
class RollbackRecord:
    at: str
    target: str
    label: str
    status: str  # applied | unchanged | restored | kept | interrupted | recovered:<outcome>
    detail: dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def journal_path(repo: Path, store: str) -> Path:
    return repo / store / JOURNAL_NAME


class ControlStore(SqliteFile):
    """Pause state and rollback history; one short transaction per call."""

    what = "control journal"
    schema = _SCHEMA

    @classmethod
    def for_repo(cls, repo: Path, store: str) -> ControlStore:
        return cls(journal_path(repo, store))

    def pause(self, reason: str, by: str = "user") -> PauseState:
        """Pause (keeps the first reason and time when already paused)."""
        with self._tx() as db:
            row = db.execute("SELECT paused FROM control_pause WHERE id = 1").fetchone()
            if not (row and row[0]):
                db.execute(
                    "INSERT OR REPLACE INTO control_pause (id, paused, reason, since, by) "
                    "VALUES (1, 1, ?, ?, ?)",
                    (reason, _now(), by),
                )
        return self.pause_state()

    def resume(self) -> PauseState:
        """Lift the pause; returns the state that was lifted."""
        before = self.pause_state()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO control_pause (id, paused, reason, since, by) "
                "VALUES (1, 0, NULL, ?, NULL)",
                (_now(),),
            )
        return before

    def pause_state(self) -> PauseState:
        row = self._db.execute(
            "SELECT paused, reason, since, by FROM control_pause WHERE id = 1"
        ).fetchone()
        if not row or not row[0]:
            return PauseState(False)
        return PauseState(True, row[1], row[2], row[3])

    def record_rollback(self, target: str, label: str, status: str, detail: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO control_rollbacks (at, target, label, status, detail) VALUES (?, ?, ?, ?, ?)",
                (_now(), target, label, status, json.dumps(detail, default=str)),
            )

    def rollbacks(self, limit: int = 10) -> list[RollbackRecord]:
        rows = self._db.execute(
            "SELECT at, target, label, status, detail FROM control_rollbacks ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [RollbackRecord(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def rollback_generation(self) -> int:
        """Grows with every recorded rollback (applied, restored, kept, recovered): a
        bisection compares it before acting to notice a rollback made meanwhile."""
        row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM control_rollbacks").fetchone()
        return int(row[0])

    def count_rollbacks(self, status: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM control_rollbacks WHERE status=?", (status,)
        ).fetchone()
        return int(row[0])

    def last_rollback(self) -> RollbackRecord | None:
        found = self.rollbacks(1)
        return found[0] if found else None
