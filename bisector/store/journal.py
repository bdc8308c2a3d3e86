"""The run journal: SQLite (WAL) under the store; every measurement lands here first.

A trial is written (and committed) before any verdict uses it, so a killed run resumes
from what was measured and a later run reuses measurements of the same
(commit, environment key, benchmark key) triple. Verdicts are journaled as steps in the
order they were decided; a resumed run recomputes them from the same trials.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisector.errors import StoreError
from bisector.store.base import SqliteFile
from bisector.store.runid import ISOLATION_KEY, new_run_id
from bisector.store.trialmeta import META_LIMIT_BYTES as META_LIMIT_BYTES
from bisector.store.trialmeta import bounded_meta
from bisector.store.trialrow import TrialRow as TrialRow
from bisector.store.trialrow import trial_from_row

JOURNAL_NAME = "journal.sqlite"
# A run that ended in an error (an endpoint that cannot be measured) is never resumed, and
# its failed trials are not read again (their cause may be fixed); its good ones are.
RUN_ERROR = "error"
_ERRORED = f"SELECT id FROM runs WHERE status='{RUN_ERROR}'"
_READABLE = f" AND NOT (trials.status<>'ok' AND trials.run_id IN ({_ERRORED}))"
_BISECTIONS = f"SELECT * FROM runs WHERE key NOT LIKE '{ISOLATION_KEY}%'"  # not listed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    good_ref TEXT NOT NULL, bad_ref TEXT NOT NULL,
    good_sha TEXT NOT NULL, bad_sha TEXT NOT NULL,
    metric TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    result TEXT,
    created REAL NOT NULL, finished REAL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_key ON runs(key);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    commit_sha TEXT NOT NULL, env_key TEXT NOT NULL, bench_key TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT NOT NULL, meta TEXT NOT NULL,
    exit_code INTEGER, duration_s REAL, log_out TEXT, log_err TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trials_triple ON trials(commit_sha, env_key, bench_key);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL,
    phase TEXT NOT NULL, commit_sha TEXT NOT NULL,
    verdict TEXT NOT NULL, samples INTEGER NOT NULL, median REAL,
    detail TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS builds (
    commit_sha TEXT NOT NULL, env_key TEXT NOT NULL,
    ok INTEGER NOT NULL, log TEXT, created REAL NOT NULL,
    PRIMARY KEY (commit_sha, env_key)
);
"""


@dataclass(frozen=True)
class RunRow:
    id: str
    key: str
    good_ref: str
    bad_ref: str
    good_sha: str
    bad_sha: str
    metric: str
    options: Mapping[str, Any]
    status: str
    result: Mapping[str, Any] | None
    created: float
    finished: float | None
    error: str | None = None  # why it ended, when its status is `RUN_ERROR`

    @property
    def errored(self) -> bool:  # `RUN_ERROR`: no document, never resumed
        return self.status == RUN_ERROR


@dataclass(frozen=True)
class StepRow:
    seq: int
    phase: str
    commit_sha: str
    verdict: str
    samples: int
    median: float | None
    detail: Mapping[str, Any]


class Journal(SqliteFile):
    """One SQLite file, opened per process; safe for one writer at a time."""

    what = "journal"
    hint = "move the damaged file away; measurements will be taken again"
    schema = _SCHEMA

    def __init__(self, store: Path) -> None:
        store.mkdir(parents=True, exist_ok=True)
        super().__init__(store / JOURNAL_NAME)

    def migrate(self, db: sqlite3.Connection) -> None:
        """Journals written before runs could end in an error lack `runs.error`."""
        if "error" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
            db.execute("ALTER TABLE runs ADD COLUMN error TEXT")

    # -- runs -----------------------------------------------------------------------

    def open_run(
        self,
        *,
        key: str,
        good_ref: str,
        bad_ref: str,
        good_sha: str,
        bad_sha: str,
        metric: str,
        options: Mapping[str, Any],
        fresh: bool,
    ) -> tuple[RunRow, bool]:
        """The unfinished (`running`: killed) run with this key (resumed), or a new one (one
        that ended in an error is not resumed). Returns (run, resumed)."""
        with self._tx() as db:
            if not fresh:
                row = db.execute(
                    "SELECT * FROM runs WHERE key=? AND status='running' ORDER BY created DESC LIMIT 1",
                    (key,),
                ).fetchone()
                if row is not None:
                    return _run(row), True
            else:
                db.execute(
                    "UPDATE runs SET status='abandoned' WHERE key=? AND status='running'", (key,)
                )
            now = time.time()
            run_id = new_run_id(key, now)
            same = db.execute("SELECT COUNT(*) FROM runs WHERE id LIKE ?", (run_id + "%",))
            if n := same.fetchone()[0]:
                run_id += f"-{n}"
            db.execute(
                "INSERT INTO runs (id, key, good_ref, bad_ref, good_sha, bad_sha, metric, options, created)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    key,
                    good_ref,
                    bad_ref,
                    good_sha,
                    bad_sha,
                    metric,
                    json.dumps(dict(options)),
                    now,
                ),
            )
        return self.run(run_id), False

    def finish_run(self, run_id: str, status: str, result: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, result=?, finished=? WHERE id=?",
                (status, json.dumps(dict(result), default=str), time.time(), run_id),
            )

    def fail_run(self, run_id: str, error: str, retry: Iterable[str] = ()) -> None:
        """End a run in an error (`RUN_ERROR`); its failed trials and the failed builds of the
        commits in `retry` are not read again (the next run measures those commits afresh)."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, error=?, finished=? WHERE id=?",
                (RUN_ERROR, error, time.time(), run_id),
            )
            db.executemany("DELETE FROM builds WHERE commit_sha=? AND ok=0", [(s,) for s in retry])

    def run(self, run_id: str) -> RunRow:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(
                f"no run {run_id!r} in {self.path}",
                hint="list runs with `bisector runs`, or use `bisector report latest`",
            )
        return _run(row)

    def latest_finished(self) -> RunRow | None:
        """The newest bisection that finished (has a document), or None."""
        row = self._db.execute(
            f"{_BISECTIONS} AND result IS NOT NULL ORDER BY created DESC, rowid DESC LIMIT 1"
        ).fetchone()
        return None if row is None else _run(row)

    def runs(self, limit: int = 20) -> list[RunRow]:
        rows = self._db.execute(
            f"{_BISECTIONS} ORDER BY created DESC, rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_run(r) for r in rows]

    # -- trials ---------------------------------------------------------------------

    def add_trial(self, trial: TrialRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO trials (run_id, commit_sha, env_key, bench_key, status, metrics, meta,"
                " exit_code, duration_s, log_out, log_err, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    trial.run_id,
                    trial.commit_sha,
                    trial.env_key,
                    trial.bench_key,
                    trial.status,
                    json.dumps({k: list(v) for k, v in trial.metrics.items()}),
                    bounded_meta(trial.meta),
                    trial.exit_code,
                    trial.duration_s,
                    trial.log_out,
                    trial.log_err,
                    time.time(),
                ),
            )

    def trials(
        self, commit_sha: str, env_key: str, bench_key: str, *, since_run: str | None = None
    ) -> list[TrialRow]:
        """Trials of the triple in the order taken (less the failed ones of runs that ended in
        an error, see `fail_run`); `since_run` limits them to one run's."""
        sql = "SELECT * FROM trials WHERE commit_sha=? AND env_key=? AND bench_key=?" + _READABLE
        args: tuple[Any, ...] = (commit_sha, env_key, bench_key)
        if since_run is not None:
            sql += " AND run_id=?"
            args += (since_run,)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        with self.reading_back(f"a trial of commit {commit_sha}"):
            return [trial_from_row(r) for r in rows]

    def commit_trials(self, commit_sha: str, *bench_keys: str) -> list[TrialRow]:
        """Every trial of a commit under these benchmark keys (a ray run over several node
        types has one a type), any environment, in the order taken (for reports)."""
        marks = ",".join("?" * len(bench_keys))
        rows = self._db.execute(
            f"SELECT * FROM trials WHERE commit_sha=? AND bench_key IN ({marks}) ORDER BY id",
            (commit_sha, *bench_keys),
        ).fetchall()
        with self.reading_back(f"a trial of commit {commit_sha}"):
            return [trial_from_row(r) for r in rows]

    def run_bench_key(self, run_id: str) -> str | None:
        """The benchmark key of a run's own trials (None: it took none)."""
        row = self._db.execute(
            "SELECT bench_key FROM trials WHERE run_id=? ORDER BY id LIMIT 1", (run_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def reused_trials(
        self, run_id: str, bench_key: str, pairs: Iterable[tuple[str, str]]
    ) -> dict[str, int]:
        """Trials of other runs in the (commit, environment key) pairs a run read under
        `bench_key`, counted by the run that took them (what that run reused)."""
        counts: dict[str, int] = {}
        for sha, env_key in pairs:
            for other, n in self._db.execute(
                "SELECT run_id, COUNT(*) FROM trials WHERE commit_sha=? AND env_key=?"
                " AND bench_key=? AND run_id<>?" + _READABLE + " GROUP BY run_id",
                (sha, env_key, bench_key, run_id),
            ):
                counts[str(other)] = counts.get(str(other), 0) + int(n)
        return counts

    def trial_count(self, run_id: str, bench_key: str | None = None) -> int:
        """Trials a run journaled (under `bench_key` only, when given)."""
        sql, args = "SELECT COUNT(*) FROM trials WHERE run_id=?", [run_id]
        if bench_key is not None:
            sql, args = sql + " AND bench_key=?", [run_id, bench_key]
        return int(self._db.execute(sql, args).fetchone()[0])

    # -- steps ----------------------------------------------------------------------

    def add_step(
        self,
        run_id: str,
        phase: str,
        commit_sha: str,
        verdict: str,
        samples: int,
        median: float | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self._tx() as db:
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id=?", (run_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO steps VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    seq,
                    phase,
                    commit_sha,
                    verdict,
                    samples,
                    median,
                    json.dumps(dict(detail or {}), default=str),
                    time.time(),
                ),
            )

    def clear_steps(self, run_id: str) -> None:
        """Forget a run's verdicts (a resumed run recomputes them from its trials)."""
        with self._tx() as db:
            db.execute("DELETE FROM steps WHERE run_id=?", (run_id,))

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self._db.execute(
            "SELECT seq, phase, commit_sha, verdict, samples, median, detail FROM steps"
            " WHERE run_id=? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [StepRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    # -- builds ---------------------------------------------------------------------

    def record_build(self, commit_sha: str, env_key: str, ok: bool, log: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO builds VALUES (?,?,?,?,?)",
                (commit_sha, env_key, int(ok), log, time.time()),
            )

    def failed_build(self, commit_sha: str, env_key: str) -> str | None:
        """The log of a recorded failed build of this commit and key, if any."""
        row = self._db.execute(
            "SELECT ok, log FROM builds WHERE commit_sha=? AND env_key=?", (commit_sha, env_key)
        ).fetchone()
        if row is None or row[0]:
            return None
        return str(row[1] or "")


def _run(row: tuple[Any, ...]) -> RunRow:
    return RunRow(
        id=row[0],
        key=row[1],
        good_ref=row[2],
        bad_ref=row[3],
        good_sha=row[4],
        bad_sha=row[5],
        metric=row[6],
        options=json.loads(row[7]),
        status=row[8],
        result=json.loads(row[9]) if row[9] else None,
        created=row[10],
        finished=row[11],
        error=row[12] if len(row) > 12 else None,  # a file opened read-only may predate it
    )
