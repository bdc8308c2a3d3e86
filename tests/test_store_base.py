"""The SQLite base every store file uses: schema and migration hook, WAL, transactions, errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bisector.errors import StoreError
from bisector.store.base import SqliteFile


class Notes(SqliteFile):
    what = "notes file"
    schema = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"

    def migrate(self, db: sqlite3.Connection) -> None:
        columns = {row[1] for row in db.execute("PRAGMA table_info(notes)")}
        if "tag" not in columns:
            db.execute("ALTER TABLE notes ADD COLUMN tag TEXT")


def test_schema_migration_wal_and_transactions(tmp_path: Path) -> None:
    """The schema and the migration run on open; a failing transaction leaves nothing behind."""
    path = tmp_path / "sub" / "notes.sqlite"
    with Notes(path) as notes:
        assert notes._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with notes._tx() as db:
            db.execute("INSERT INTO notes (text, tag) VALUES ('kept', 'a')")
        with pytest.raises(RuntimeError), notes._tx() as db:
            db.execute("INSERT INTO notes (text) VALUES ('dropped')")
            raise RuntimeError("boom")
    with Notes(path) as again:  # migrating twice is a no-op
        assert again._db.execute("SELECT text, tag FROM notes").fetchall() == [("kept", "a")]


def test_read_only_creates_nothing_and_errors_are_store_errors(tmp_path: Path) -> None:
    """A read-only open of a missing file fails as a StoreError naming the file; writes fail too."""
    missing = tmp_path / "none" / "notes.sqlite"
    with pytest.raises(StoreError, match="cannot open the notes file"):
        Notes(missing, read_only=True)
    assert not missing.parent.exists()
    Notes(tmp_path / "notes.sqlite").close()
    with Notes(tmp_path / "notes.sqlite", read_only=True) as ro:
        with pytest.raises(StoreError, match="notes file"), ro._tx() as db:
            db.execute("INSERT INTO notes (text) VALUES ('x')")
