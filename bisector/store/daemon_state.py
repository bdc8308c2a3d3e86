"""The daemon's durable state, in tables of its own (`daemon_*`) in the run journal.

Cycles (with their outcome), the last known good commit, every (good, bad) range the
daemon acted on (with how far it got: bisected, alerted, done) and the release tags it
snapshotted. A restart reads them back, so nothing is bisected or alerted twice and a
cycle killed midway is finished by the next one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bisector.store.base import SqliteFile

JOURNAL_NAME = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS daemon_cycles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started REAL NOT NULL, finished REAL,
  status TEXT NOT NULL,            -- running | finished | interrupted | abandoned
  outcome TEXT,                    -- see cycle.Outcome
  detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS daemon_last_good (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  sha TEXT NOT NULL, ref TEXT NOT NULL, since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS daemon_ranges (
  good_sha TEXT NOT NULL, bad_sha TEXT NOT NULL,
  phase TEXT NOT NULL,             -- bisecting | bisected | acted | alerted | done
  run_id TEXT, status TEXT, culprit TEXT, detail TEXT NOT NULL DEFAULT '{}',
  created REAL NOT NULL, updated REAL NOT NULL,
  PRIMARY KEY (good_sha, bad_sha)
);
CREATE TABLE IF NOT EXISTS daemon_tags (
  name TEXT PRIMARY KEY, sha TEXT NOT NULL, snapshotted REAL NOT NULL
);
"""

_RANGE_COLUMNS = "good_sha, bad_sha, phase, run_id, status, culprit, detail"

# acted: the policy ran (its result in `detail`), the alert is next; alerted: an older
# daemon's order (alert, then act), still read.
Phase = Literal["bisecting", "bisected", "acted", "alerted", "done"]


@dataclass(frozen=True)
class CycleRow:
    id: int
    started: float
    finished: float | None
    status: str
    outcome: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class RangeRow:
    good_sha: str
    bad_sha: str
    phase: Phase
    run_id: str | None
    status: str | None
    culprit: str | None
    detail: Mapping[str, Any]

    @property
    def culprits(self) -> tuple[str, ...]:
        """Every culprit commit the range's run named (`culprit` is only the largest)."""
        return culprits_in(self.culprit, self.detail)


def culprits_in(culprit: str | None, detail: Mapping[str, Any]) -> tuple[str, ...]:
    """The culprits journaled in a range's detail (every regression step of its run);
    a range journaled without them names only its `culprit`."""
    found = detail.get("culprits") or ([culprit] if culprit else [])
    return tuple(str(c) for c in found)


@dataclass(frozen=True)
class LastGood:
    sha: str
    ref: str
    since: float


@dataclass(frozen=True)
class Totals:
    outcomes: Mapping[str, int]  # cycles by outcome
    last_outcome: str | None
    last_finished: float | None
    last_duration: float | None
    culprits: int  # distinct culprit commits named by the daemon's runs
    trials: int  # trials journaled by the daemon's runs
    steps: int  # bisection verdicts of the daemon's runs


class DaemonState(SqliteFile):
    """One connection to the journal file; one short transaction per call."""

    what = "daemon state"
    schema = _SCHEMA

    def __init__(self, store: Path) -> None:
        super().__init__(store / JOURNAL_NAME, shared_across_threads=True)

    # -- cycles -----------------------------------------------------------------------

    def begin_cycle(self) -> tuple[int, list[CycleRow]]:
        """Open a cycle; cycles still `running` (killed) become `interrupted` and are returned."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT * FROM daemon_cycles WHERE status='running' ORDER BY id"
            ).fetchall()
            db.execute("UPDATE daemon_cycles SET status='interrupted' WHERE status='running'")
            cur = db.execute(
                "INSERT INTO daemon_cycles (started, status) VALUES (?, 'running')", (time.time(),)
            )
            cycle_id = int(cur.lastrowid or 0)
        return cycle_id, [_cycle(r) for r in rows]

    def finish_cycle(
        self, cycle_id: int, status: str, outcome: str, detail: Mapping[str, Any]
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE daemon_cycles SET finished=?, status=?, outcome=?, detail=? WHERE id=?",
                (time.time(), status, outcome, json.dumps(dict(detail), default=str), cycle_id),
            )

    def cycles(self, limit: int = 10) -> list[CycleRow]:
        rows = self._db.execute(
            "SELECT * FROM daemon_cycles ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_cycle(r) for r in rows]

    def interrupted_pending(self) -> bool:
        """True when the newest cycle never finished (the process was killed)."""
        row = self._db.execute(
            "SELECT status FROM daemon_cycles ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return row is not None and row[0] in ("running", "interrupted")

    # -- last known good --------------------------------------------------------------

    def last_good(self) -> LastGood | None:
        row = self._db.execute("SELECT sha, ref, since FROM daemon_last_good WHERE id=1").fetchone()
        return None if row is None else LastGood(row[0], row[1], row[2])

    def set_last_good(self, sha: str, ref: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO daemon_last_good (id, sha, ref, since) VALUES (1, ?, ?, ?)",
                (sha, ref, time.time()),
            )

    # -- ranges -----------------------------------------------------------------------

    def range(self, good_sha: str, bad_sha: str) -> RangeRow | None:
        row = self._db.execute(
            f"SELECT {_RANGE_COLUMNS} FROM daemon_ranges WHERE good_sha=? AND bad_sha=?",
            (good_sha, bad_sha),
        ).fetchone()
        return None if row is None else _range(row)

    def set_range(
        self,
        good_sha: str,
        bad_sha: str,
        phase: Phase,
        *,
        run_id: str | None = None,
        status: str | None = None,
        culprit: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO daemon_ranges (good_sha, bad_sha, phase, run_id, status, culprit, detail, created, updated)"
                " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(good_sha, bad_sha) DO UPDATE SET phase=excluded.phase,"
                " run_id=COALESCE(excluded.run_id, run_id), status=COALESCE(excluded.status, status),"
                " culprit=COALESCE(excluded.culprit, culprit), detail=excluded.detail, updated=excluded.updated",
                (
                    good_sha,
                    bad_sha,
                    phase,
                    run_id,
                    status,
                    culprit,
                    json.dumps(dict(detail or {}), default=str),
                    now,
                    now,
                ),
            )

    def owed_alerts(self) -> list[RangeRow]:
        """Ranges acted on whose alert no webhook took yet (or a kill cut off), oldest first."""
        rows = self._db.execute(
            f"SELECT {_RANGE_COLUMNS} FROM daemon_ranges WHERE phase='acted' ORDER BY created, rowid"
        ).fetchall()
        return [_range(r) for r in rows]

    def supersede_owed(
        self, culprits: Sequence[str], good_sha: str, bad_sha: str, run_id: str | None
    ) -> list[str]:
        """Ranges older than (good, bad) still owing an alert whose every culprit is in
        `culprits` become `done`, their alert `superseded` by the run `run_id` (whose alert
        named them all); their run ids. One naming a culprit more still owes its alert."""
        named = set(culprits)
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_RANGE_COLUMNS} FROM daemon_ranges WHERE phase='acted'"
                " AND (created, rowid) < (SELECT created, rowid FROM daemon_ranges"
                " WHERE good_sha=? AND bad_sha=?)",
                (good_sha, bad_sha),
            ).fetchall()
            stale = [r for r in map(_range, rows) if r.culprits and named.issuperset(r.culprits)]
            for r in stale:
                detail = {**r.detail, "alert": "superseded", "superseded_by": run_id}
                db.execute(
                    "UPDATE daemon_ranges SET phase='done', detail=?, updated=?"
                    " WHERE good_sha=? AND bad_sha=?",
                    (json.dumps(detail, default=str), now, r.good_sha, r.bad_sha),
                )
        return [str(r.run_id) for r in stale]

    def alerted_culprits(self) -> set[str]:
        """Every culprit commit a range's alert named (delivered, or left out as a duplicate
        or superseded, another one naming it having been delivered)."""
        rows = self._db.execute(
            "SELECT culprit, detail FROM daemon_ranges WHERE phase IN ('alerted', 'done')"
        ).fetchall()
        return {c for culprit, detail in rows for c in culprits_in(culprit, json.loads(detail))}

    def ranges(self, limit: int = 10) -> list[RangeRow]:
        rows = self._db.execute(
            f"SELECT {_RANGE_COLUMNS} FROM daemon_ranges ORDER BY updated DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_range(r) for r in rows]

    # -- totals (the metrics endpoint reads them at every scrape) ----------------------

    def totals(self) -> Totals:
        """What the daemon did over the journal's whole life (survives restarts)."""
        db = self._db
        outcomes = dict(
            db.execute(
                "SELECT outcome, COUNT(*) FROM daemon_cycles WHERE outcome IS NOT NULL"
                " GROUP BY outcome"
            ).fetchall()
        )
        last = db.execute(
            "SELECT outcome, started, finished FROM daemon_cycles WHERE finished IS NOT NULL"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        culprits: set[str] = set()
        run_ids: set[str] = set()
        for run_id, culprit, detail in db.execute(
            "SELECT run_id, culprit, detail FROM daemon_ranges"
        ).fetchall():
            if run_id:
                run_ids.add(run_id)
            culprits.update(culprits_in(culprit, json.loads(detail or "{}")))
        trials = steps = 0
        marks = ",".join("?" * len(run_ids))
        try:
            if run_ids:
                trials = db.execute(
                    f"SELECT COUNT(*) FROM trials WHERE run_id IN ({marks})", tuple(run_ids)
                ).fetchone()[0]
                steps = db.execute(
                    f"SELECT COUNT(*) FROM steps WHERE run_id IN ({marks})", tuple(run_ids)
                ).fetchone()[0]
        except sqlite3.OperationalError:  # no run journaled in this file yet: no tables
            pass
        return Totals(
            outcomes={str(k): int(v) for k, v in outcomes.items()},
            last_outcome=None if last is None else last[0],
            last_finished=None if last is None else last[2],
            last_duration=None if last is None else last[2] - last[1],
            culprits=len(culprits),
            trials=int(trials),
            steps=int(steps),
        )

    # -- tags -------------------------------------------------------------------------

    def snapshotted_tags(self) -> dict[str, str]:
        return {
            r[0]: r[1] for r in self._db.execute("SELECT name, sha FROM daemon_tags").fetchall()
        }

    def record_tags(self, tags: Mapping[str, str]) -> None:
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO daemon_tags (name, sha, snapshotted) VALUES (?,?,?)",
                [(name, sha, now) for name, sha in tags.items()],
            )


def _range(row: tuple[Any, ...]) -> RangeRow:
    return RangeRow(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))


def _cycle(row: tuple[Any, ...]) -> CycleRow:
    return CycleRow(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"))
