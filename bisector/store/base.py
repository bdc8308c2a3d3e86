"""The one way bisector opens its SQLite journal: WAL, FULL sync, short transactions.

The run journal and the control tables share one file (`<store>/journal.sqlite`); both
open it through here so their durability settings cannot drift apart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bisector.errors import StoreError


def open_journal(
    path: Path, schema: str, *, what: str, hint: str, shared_across_threads: bool = False
) -> sqlite3.Connection:
    """Open (creating) `path` in WAL mode and apply `schema` (CREATE ... IF NOT EXISTS).

    `shared_across_threads`: the daemon's scheduler and signal handling touch its state
    from more than one thread (each call is one short transaction under sqlite's lock).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            path, timeout=30.0, isolation_level=None, check_same_thread=not shared_across_threads
        )
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: what was reported as journaled (a trial, a pause) survives a power cut.
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StoreError(f"cannot open the {what} {path}: {exc}", hint=hint) from exc
    return db


@contextmanager
def transaction(db: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{what}: {exc}") from exc
