"""The content-addressed snapshot store under `<repo>/<snapshots.store>/`.

Layout::

    objects/ab/cdef...     the bytes whose sha256 is abcdef... (config files, dependency
                           files, manifests, environment records)
    snapshots.sqlite       the index: snapshots (manifest id -> commit, tags, created),
                           refs (ref name -> commit and manifest when taken),
                           environments (manifest id, env key -> record object, newest last)

Every object read is hashed and compared with its name; a mismatch is a `StoreError`
naming the object and what it belongs to. Objects are written atomically and never
change; writing an object that exists verifies it and rewrites it only when it is
corrupt (the bytes come from git, the source of truth, so a re-take repairs).

Read operations never create the store: a store that does not exist is empty, and so
is an index file without its tables.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog
from pydantic import ValidationError

from bisector.errors import StoreError
from bisector.plumbing.atomic import atomic_write_bytes, fsync_dir
from snapshots.index import INDEX_NAME, Index
from snapshots.manifest import (
    SCHEMA_VERSION,
    EnvironmentRecord,
    Manifest,
    ResolvedPackage,
    Runtime,
    Snapshot,
    sha256_hex,
)

__all__ = ["INDEX_NAME", "IndexEntry", "Store"]

_Record = TypeVar("_Record", Manifest, EnvironmentRecord)
_log = structlog.get_logger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class IndexEntry:
    """One row of the index (not verified: load the snapshot for that)."""

    id: str
    commit: str
    tags: tuple[str, ...]
    date: str
    subject: str
    created: str


class Store:
    """A snapshot store rooted at `root` (created on the first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.index_path = self.root / INDEX_NAME

    # -- plumbing -------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        """The index holds its snapshots table. An empty or table-less file (truncated, or
        made by hand) holds no snapshots yet: a reading command says so and writes
        nothing; the first write creates the tables."""
        if not self.index_path.is_file():
            return False
        with self._db(write=False) as con:
            found = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'"
            ).fetchone()
        return found is not None

    @contextmanager
    def _db(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """The index for one operation: a write is one transaction, a read opens read-only."""
        if write:
            self.objects.mkdir(parents=True, exist_ok=True)
        elif not self.index_path.is_file():
            raise StoreError(f"no snapshot store at {self.root}")  # callers check `exists`
        try:
            with Index(self.index_path, read_only=not write) as index:
                if write:
                    with index._tx() as con:
                        yield con
                else:
                    yield index._db
        except sqlite3.DatabaseError as exc:
            raise Index.unreadable(self.index_path, exc) from exc

    def object_path(self, oid: str) -> Path:
        return self.objects / oid[:2] / oid[2:]

    def _corrupt(self, oid: str, what: str, detail: str, commit: str | None) -> StoreError:
        retake = f"`bisector snapshot take {commit}`" if commit else "`bisector snapshot take REF`"
        return StoreError(
            f"snapshot store object {oid[:12]} ({what}) {detail}: {self.object_path(oid)}",
            hint=f"the store was modified outside bisector; re-take the snapshot with {retake}",
        )

    def put_object(self, data: bytes, what: str = "object", *, repair: bool = False) -> str:
        """Store `data`; returns its sha256. Existing intact objects are left alone.

        :raises StoreError: the object exists but is corrupt and `repair` is false.
        """
        oid = sha256_hex(data)
        path = self.object_path(oid)
        try:
            if path.is_file() and sha256_hex(path.read_bytes()) == oid:
                return oid
            if path.exists():
                if not repair:
                    raise self._corrupt(oid, what, "is corrupt (sha256 mismatch)", None)
                _log.warning("store.object_repaired", object=oid, path=str(path))
            new_folder = not path.parent.is_dir()
            path.parent.mkdir(parents=True, exist_ok=True)
            if new_folder:
                fsync_dir(path.parent.parent)
            atomic_write_bytes(path, data, mode=0o444)
        except OSError as exc:
            raise StoreError(
                f"cannot write snapshot object {path}: {exc.strerror or exc}",
                hint="the store (snapshots.store in bisector.yaml) must be a folder bisector may "
                "write; move what is in the way, or point snapshots.store elsewhere",
            ) from exc
        return oid

    def get_object(self, oid: str, what: str, *, commit: str | None = None) -> bytes:
        """The verified bytes of object `oid`; `what` names it in errors (e.g. a path).

        :raises StoreError: the object is missing or its bytes do not hash to `oid`.
        """
        path = self.object_path(oid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise self._corrupt(oid, what, "is missing", commit) from None
        except OSError as exc:
            raise self._corrupt(oid, what, f"cannot be read ({exc.strerror})", commit) from exc
        if sha256_hex(data) != oid:
            raise self._corrupt(oid, what, "is corrupt (sha256 mismatch)", commit)
        return data

    # -- snapshots ------------------------------------------------------------------

    def put_snapshot(
        self,
        manifest: Manifest,
        files: Sequence[bytes],
        *,
        ref: str | None = None,
        repair: bool = False,
    ) -> Snapshot:
        """Store the manifest and the bytes it names; a no-op when already stored.

        `repair`: rewrite existing objects that are corrupt (an explicit re-take) instead
        of raising `StoreError`.
        """
        what = f"a file of commit {manifest.commit[:10]}"
        for data in files:
            self.put_object(data, what, repair=repair)
        mid = self.put_object(
            manifest.to_bytes(), f"manifest of commit {manifest.commit[:10]}", repair=repair
        )
        with self._db(write=True) as con:
            con.execute(
                "INSERT OR IGNORE INTO snapshots (id, commit_sha, tags, date, subject, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    mid,
                    manifest.commit,
                    json.dumps(list(manifest.tags)),
                    manifest.date,
                    manifest.subject,
                    _now(),
                ),
            )
            if ref is not None and ref != manifest.commit:
                con.execute(
                    "INSERT INTO refs (ref, commit_sha, snapshot, taken) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(ref) DO UPDATE SET commit_sha = excluded.commit_sha,"
                    " snapshot = excluded.snapshot, taken = excluded.taken"
                    " WHERE refs.snapshot != excluded.snapshot",
                    (ref, manifest.commit, mid, _now()),
                )
        return self.load(mid)

    def entries(self) -> list[IndexEntry]:
        """All index rows, oldest first (empty when the store does not exist)."""
        if not self.exists:
            return []
        with self._db(write=False) as con:
            rows = con.execute(
                "SELECT id, commit_sha, tags, date, subject, created FROM snapshots ORDER BY seq"
            ).fetchall()
        return [IndexEntry(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4], r[5]) for r in rows]

    def find_commit(self, commit: str) -> str | None:
        """Id of the newest manifest of `commit`, if any."""
        if not self.exists:
            return None
        with self._db(write=False) as con:
            row = con.execute(
                "SELECT id FROM snapshots WHERE commit_sha = ? ORDER BY seq DESC LIMIT 1", (commit,)
            ).fetchone()
        return str(row[0]) if row else None

    def find_ref(self, ref: str) -> str | None:
        """Manifest id recorded for a ref name when it was taken."""
        if not self.exists:
            return None
        with self._db(write=False) as con:
            row = con.execute("SELECT snapshot FROM refs WHERE ref = ?", (ref,)).fetchone()
        return str(row[0]) if row else None

    def find_id(self, prefix: str) -> list[str]:
        """Manifest ids starting with `prefix` (lower-case hex)."""
        if not self.exists or not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return []
        with self._db(write=False) as con:
            rows = con.execute(
                "SELECT id FROM snapshots WHERE substr(id, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def load(self, manifest_id: str) -> Snapshot:
        """The verified manifest with its newest environment record per key."""
        with self._db(write=False) as con:
            row = con.execute(
                "SELECT commit_sha, created FROM snapshots WHERE id = ?", (manifest_id,)
            ).fetchone()
            envs = con.execute(
                "SELECT env_key, object FROM environments WHERE snapshot = ? ORDER BY seq",
                (manifest_id,),
            ).fetchall()
        if row is None:
            raise StoreError(f"no snapshot {manifest_id[:12]} in {self.root}")
        commit, created = str(row[0]), str(row[1])
        manifest = self._parse(
            Manifest,
            self.get_object(manifest_id, f"manifest of commit {commit[:10]}", commit=commit),
            manifest_id,
            commit,
        )
        if manifest.commit != commit:
            raise self._corrupt(
                manifest_id,
                f"manifest of commit {commit[:10]}",
                f"names another commit ({manifest.commit[:10]})",
                commit,
            )
        newest: dict[str, str] = {}
        for key, oid in envs:
            newest.pop(key, None)  # re-insert so the dict ends with the newest attachment
            newest[key] = oid
        records: dict[str, EnvironmentRecord] = {}
        for key, oid in newest.items():
            what = f"environment {key} of commit {commit[:10]}"
            rec = self._parse(
                EnvironmentRecord, self.get_object(oid, what, commit=commit), oid, commit
            )
            if rec.manifest != manifest_id:
                raise self._corrupt(oid, what, "belongs to another snapshot", commit)
            records[key] = rec
        return Snapshot(manifest=manifest, created=created, environments=records)

    def _parse(self, model: type[_Record], data: bytes, oid: str, commit: str) -> _Record:
        try:
            obj = model.model_validate_json(data)
        except ValidationError as exc:
            raise self._corrupt(
                oid, model.__name__.lower(), "is not a valid record", commit
            ) from exc
        if obj.schema_version > SCHEMA_VERSION:
            raise StoreError(
                f"snapshot object {oid[:12]} has schema version {obj.schema_version},"
                f" this bisector reads up to {SCHEMA_VERSION}",
                hint="upgrade bisector",
            )
        return obj

    def read_config(self, snapshot: Snapshot, path: str) -> bytes:
        """A config file's verified bytes."""
        cf = snapshot.manifest.config(path)
        if cf is None:
            raise StoreError(f"snapshot {snapshot.id[:12]} has no config file {path}")
        return self.get_object(
            cf.object, f"{path} at commit {snapshot.commit[:10]}", commit=snapshot.commit
        )

    def verify(self, snapshot: Snapshot) -> None:
        """Read and hash every config and dependency file object the snapshot names."""
        self.config_files(snapshot)
        for f in snapshot.manifest.dependency_files:
            self.get_object(
                f.object, f"{f.path} at commit {snapshot.commit[:10]}", commit=snapshot.commit
            )

    def config_files(self, snapshot: Snapshot) -> dict[str, bytes]:
        return {c.path: self.read_config(snapshot, c.path) for c in snapshot.manifest.configs}

    # -- environments ---------------------------------------------------------------

    def attach_environment(
        self,
        commit: str,
        env_key: str,
        resolved: Sequence[ResolvedPackage],
        runtime: Runtime,
    ) -> Snapshot:
        """Record a resolved environment for the newest snapshot of `commit`.

        The manifest does not change: the record is a new object, and the index points
        the (snapshot, env_key) pair at it; the newest record per key wins.
        :raises StoreError: there is no snapshot of `commit`.
        """
        mid = self.find_commit(commit)
        if mid is None:
            raise StoreError(
                f"no snapshot of commit {commit[:10]} to attach an environment to",
                hint=f"take it first: bisector snapshot take {commit}",
            )
        self.load(mid)  # verify before extending
        record = EnvironmentRecord(
            manifest=mid,
            env_key=env_key,
            resolved=tuple(sorted(resolved, key=lambda p: p.name)),
            runtime=runtime,
        )
        oid = self.put_object(record.to_bytes())
        with self._db(write=True) as con:
            row = con.execute(
                "SELECT object FROM environments WHERE snapshot = ? AND env_key = ?"
                " ORDER BY seq DESC LIMIT 1",
                (mid, env_key),
            ).fetchone()
            if row is None or row[0] != oid:
                con.execute(
                    "INSERT INTO environments (snapshot, env_key, object, created)"
                    " VALUES (?, ?, ?, ?)",
                    (mid, env_key, oid, _now()),
                )
        return self.load(mid)
