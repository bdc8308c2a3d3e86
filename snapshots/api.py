"""The snapshot operations the CLI, the search, the builders and rollback call.

Every function takes the repository path and the loaded `Config`; the store lives at
`<repo>/<config.snapshots.store>`. All refs are resolved (and validated) before the
store is touched, so a bad ref leaves the store exactly as it was, or absent.

`diff(a, b)` takes a snapshot of either side on the fly when none is stored for its
commit (and keeps it), and reuses a stored one otherwise.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisector.config import Config
from bisector.core.types import Commit, Tag
from bisector.errors import RefError, StoreError
from bisector.gitrepo import GitRepo
from bisector.ports import Vcs
from snapshots.configs import match_globs, parse_config_bytes
from snapshots.deps import auto_detect, read_declared
from snapshots.diff import SnapshotDiff, diff_snapshots
from snapshots.manifest import (
    ConfigFile,
    DependencyFile,
    Manifest,
    ResolvedPackage,
    Runtime,
    Snapshot,
    sha256_hex,
)
from snapshots.store import IndexEntry, Store

__all__ = [
    "Listed",
    "attach_environment",
    "capture",
    "config_set",
    "diff",
    "list_snapshots",
    "list_stored",
    "show",
    "store_for",
    "take",
]


def store_for(repo_path: Path, config: Config) -> Store:
    return Store(Path(repo_path) / config.snapshots.store)


def capture(
    vcs: Vcs, commit: Commit, config: Config, tags: Sequence[Tag] = ()
) -> tuple[Manifest, list[bytes]]:
    """Read a commit's config and dependency files from git objects into a manifest.

    Returns the manifest and the bytes of every object it names (not yet stored).
    """
    files = vcs.list_files(commit.sha)
    blobs: list[bytes] = []
    configs: list[ConfigFile] = []
    for path in match_globs(files, config.snapshots.configs):
        data = vcs.read_file(commit.sha, path)
        if data is None:  # a submodule or another non-blob entry
            continue
        _, error = parse_config_bytes(path, data)
        configs.append(
            ConfigFile(path=path, object=sha256_hex(data), size=len(data), parse_error=error)
        )
        blobs.append(data)

    wanted = list(config.environment.requirements)
    notes = [
        f"{p}: configured in environment.requirements but missing at this commit"
        for p in wanted
        if p.removeprefix("./") not in files
    ]
    declared = read_declared(lambda p: vcs.read_file(commit.sha, p), wanted + auto_detect(files))
    dep_files = [
        DependencyFile(path=p, object=sha256_hex(d), size=len(d))
        for p, d in sorted(declared.files.items())
    ]
    blobs += declared.files.values()
    manifest = Manifest(
        commit=commit.sha,
        tags=tuple(t.name for t in tags if t.sha == commit.sha),
        date=commit.date,
        subject=commit.subject,
        config_globs=tuple(config.snapshots.configs),
        configs=tuple(configs),
        dependency_files=tuple(dep_files),
        dependencies=tuple(declared.dependencies),
        notes=tuple(notes + declared.notes),
    )
    return manifest, blobs


def take(repo_path: Path, config: Config, refs: Sequence[str]) -> list[Snapshot]:
    """Snapshot each ref (a no-op for a ref whose snapshot is already stored).

    :raises RefError: a ref is unsafe or unknown (nothing is written then).
    :raises StoreError: the store cannot be written, or an existing object is corrupt.
    """
    with GitRepo(Path(repo_path)) as vcs:
        commits = [vcs.resolve(ref) for ref in refs]
        tags = vcs.tags()
        captured = [capture(vcs, c, config, tags) for c in commits]
    store = store_for(repo_path, config)
    return [
        store.put_snapshot(manifest, blobs, ref=ref, repair=True)
        for ref, (manifest, blobs) in zip(refs, captured, strict=True)
    ]


@dataclass(frozen=True)
class Listed:
    """One stored snapshot as `snapshot list` shows it: verified, or damaged and why.

    A damaged one (an object missing or corrupt, a manifest that is no record) is shown
    from its index row, which is all that can be trusted of it."""

    entry: IndexEntry
    snapshot: Snapshot | None  # None when damaged
    damage: StoreError | None = None

    def to_json(self) -> dict[str, Any]:
        if self.snapshot is not None:
            return {**self.snapshot.to_json(), "damaged": None}
        e, damage = self.entry, self.damage
        assert damage is not None
        return {
            "id": e.id,
            "commit": e.commit,
            "tags": list(e.tags),
            "date": e.date,
            "subject": e.subject,
            "created": e.created,
            "damaged": {"error": damage.message, "hint": damage.hint},
        }


def list_stored(repo_path: Path, config: Config) -> list[Listed]:
    """The newest snapshot of every stored commit, by commit date, each verified; one that
    fails verification is listed as damaged, so the rest of the store stays visible."""
    store = store_for(repo_path, config)
    newest: dict[str, IndexEntry] = {}
    for entry in store.entries():
        newest[entry.commit] = entry
    listed: list[Listed] = []
    for entry in newest.values():
        try:
            snap = store.load(entry.id)
            store.verify(snap)
        except StoreError as exc:
            listed.append(Listed(entry, None, exc))
        else:
            listed.append(Listed(entry, snap))
    return sorted(listed, key=lambda item: (item.entry.date, item.entry.commit))


def list_snapshots(repo_path: Path, config: Config) -> list[Snapshot]:
    """The newest snapshot of every stored commit, by commit date (every object verified).

    :raises StoreError: the first damaged snapshot's (`list_stored` lists them all).
    """
    snaps: list[Snapshot] = []
    for item in list_stored(repo_path, config):
        if item.damage is not None:
            raise item.damage
        assert item.snapshot is not None
        snaps.append(item.snapshot)
    return snaps


def _lookup(store: Store, repo_path: Path, ref_or_id: str) -> str:
    """Manifest id for a git ref (newest snapshot of its commit) or a snapshot id prefix."""
    try:
        with GitRepo(Path(repo_path)) as vcs:
            commit = vcs.resolve(ref_or_id)
    except RefError as exc:
        ids = store.find_id(ref_or_id) if len(ref_or_id) >= 7 else []
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise RefError(
                f"snapshot id {ref_or_id!r} is ambiguous", hint="give more digits"
            ) from exc
        if (mid := store.find_ref(ref_or_id)) is not None and exc.message.startswith("unknown"):
            return mid  # a ref that moved or was deleted since it was taken
        raise
    mid = store.find_commit(commit.sha)
    if mid is None:
        raise StoreError(
            f"no snapshot of {ref_or_id} ({commit.short}) in {store.root}",
            hint=f"take it first: bisector snapshot take {shlex.quote(ref_or_id)}",
        )
    return mid


def show(repo_path: Path, config: Config, ref_or_id: str) -> Snapshot:
    """The stored snapshot of a ref (its newest) or of a snapshot id; every object verified."""
    store = store_for(repo_path, config)
    snap = store.load(_lookup(store, repo_path, ref_or_id))
    store.verify(snap)
    return snap


def config_set(repo_path: Path, config: Config, ref_or_id: str) -> dict[str, bytes]:
    """A snapshot's config files, path -> verified bytes (what a rollback writes)."""
    store = store_for(repo_path, config)
    return store.config_files(store.load(_lookup(store, repo_path, ref_or_id)))


def diff(repo_path: Path, config: Config, a: str, b: str) -> SnapshotDiff:
    """What changed from `a` to `b`; missing snapshots are taken first (and kept).

    Stored sides are read and verified before anything is written, so a corrupt store
    fails the diff without being changed.
    """
    store = store_for(repo_path, config)
    with GitRepo(Path(repo_path)) as vcs:
        commits = [vcs.resolve(a), vcs.resolve(b)]
        stored = {c.sha: mid for c in commits if (mid := store.find_commit(c.sha)) is not None}
        loaded = {sha: store.load(mid) for sha, mid in stored.items()}
        for snap in loaded.values():
            store.verify(snap)
        files = {sha: store.config_files(snap) for sha, snap in loaded.items()}
        tags = vcs.tags() if len(stored) < len(commits) else []
        captured = {c.sha: capture(vcs, c, config, tags) for c in commits if c.sha not in stored}
    for ref, c in zip((a, b), commits, strict=True):
        if c.sha in captured:
            manifest, blobs = captured.pop(c.sha)
            loaded[c.sha] = store.put_snapshot(manifest, blobs, ref=ref)
            files[c.sha] = store.config_files(loaded[c.sha])
    ca, cb = commits
    return diff_snapshots(
        loaded[ca.sha], files[ca.sha], loaded[cb.sha], files[cb.sha], a_ref=a, b_ref=b
    )


def attach_environment(
    repo_path: Path,
    config: Config,
    commit: str,
    env_key: str,
    resolved: Sequence[ResolvedPackage],
    runtime: Runtime,
) -> Snapshot:
    """Attach a built environment to the newest snapshot of `commit` (see `Store`)."""
    return store_for(repo_path, config).attach_environment(commit, env_key, resolved, runtime)
