"""The one way bisector opens its SQLite files: busy timeout, WAL, short transactions.

The run journal, the control tables and the daemon's state share one file
(`<store>/journal.sqlite`); the snapshot index is its own file (`snapshots.sqlite`). All
of them are a subclass of `SqliteFile`, so their durability settings, transactions and
error messages cannot drift apart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import quote

from bisector.errors import StoreError

__all__ = ["SqliteFile"]

BUSY_TIMEOUT_S = 30.0


class SqliteFile:
    """One connection to one SQLite file; subclasses name it and give its schema.

    `schema` (CREATE ... IF NOT EXISTS) is applied on every writable open, then `migrate`
    (the hook for changes the schema text cannot express). `wal`: WAL with
    synchronous=FULL, so what was reported as journaled (a trial, a pause) survives a
    power cut; a file without it keeps SQLite's default rollback journal (the snapshot
    index, whose layout on disk stays one file). `read_only` opens without creating or
    writing anything. `shared_across_threads`: the daemon's scheduler and signal handling
    touch its state from more than one thread (each call is one short transaction under
    SQLite's lock).
    """

    what: ClassVar[str] = "database"  # in messages: "cannot open the <what> <path>"
    hint: ClassVar[str] = "check the permissions of the store folder (snapshots.store)"
    schema: ClassVar[str] = ""
    wal: ClassVar[bool] = True

    def __init__(
        self, path: Path, *, read_only: bool = False, shared_across_threads: bool = False
    ) -> None:
        self.path = Path(path)
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # read-only needs a URI (mode=ro); quoted, as a path may hold '?' or '#'
            target = f"file:{quote(str(self.path))}?mode=ro" if read_only else str(self.path)
            db = sqlite3.connect(
                target,
                uri=read_only,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=not shared_across_threads,
            )
        except (sqlite3.DatabaseError, OSError) as exc:
            raise self._error(exc, opening=True) from exc
        self._db = db
        try:
            if self.wal and not read_only:  # journal_mode is stored in the file
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            if not read_only:
                db.executescript(self.schema)
                self.migrate(db)
        except (sqlite3.DatabaseError, OSError) as exc:
            db.close()
            raise self._error(exc, opening=True) from exc

    def migrate(self, db: sqlite3.Connection) -> None:
        """Bring an older file up to date after `schema` ran (none needed so far)."""

    def _error(self, exc: BaseException, *, opening: bool) -> StoreError:
        if opening:
            return StoreError(f"cannot open the {self.what} {self.path}: {exc}", hint=self.hint)
        return StoreError(f"{self.what} {self.path}: {exc}")

    @contextmanager
    def reading_back(self, what: str) -> Iterator[None]:
        """Around decoding rows (JSON columns into documents): a value edited into something
        else (not JSON, a list, a wrong type) is a StoreError naming the file and `what`,
        never an internal error."""
        try:
            yield
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StoreError(
                f"the {self.what} {self.path} holds a damaged record of {what}: "
                f"{type(exc).__name__}: {exc}",
                hint="it was edited or damaged outside bisector; move the file aside to start "
                "a new one (the measurements in it are then not reused)",
            ) from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, opening=False) from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
