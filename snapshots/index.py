"""The snapshot index file, `<store>/snapshots.sqlite`: its schema and how it is opened.

`Store` (snapshots.store) is its only user; the objects it points at live beside it.
"""

from __future__ import annotations

from pathlib import Path

from bisector.errors import StoreError
from bisector.store.base import SqliteFile

__all__ = ["INDEX_NAME", "Index"]

INDEX_NAME = "snapshots.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    commit_sha TEXT NOT NULL,
    tags TEXT NOT NULL,
    date TEXT NOT NULL,
    subject TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_commit ON snapshots(commit_sha);
CREATE TABLE IF NOT EXISTS refs (
    ref TEXT PRIMARY KEY,
    commit_sha TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    taken TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS environments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshot TEXT NOT NULL,
    env_key TEXT NOT NULL,
    object TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS environments_snapshot ON environments(snapshot, env_key);
"""


class Index(SqliteFile):
    """`snapshots.sqlite`, opened per operation. No WAL: the store stays one file per
    index, and a read-only open of a WAL file would need to write its -shm file."""

    schema = _SCHEMA
    wal = False

    @staticmethod
    def unreadable(path: Path, exc: BaseException) -> StoreError:
        return StoreError(
            f"snapshot index {path} is unreadable: {exc}",
            hint="move the store folder away and take the snapshots again",
        )

    def _error(self, exc: BaseException, *, opening: bool) -> StoreError:  # noqa: ARG002 (the base's hook)
        return self.unreadable(self.path, exc)
