"""`bisector cache list | prune`: the environments and images a repository's store keeps.

venv environments live under `<store>/envs/` (LRU of `environment.cache_size`); docker
images are `bisector-env:<key>` on the daemon, with their LRU entries under
`<store>/images/`, and per-commit code images `bisector-code:<key>-<sha12>` with theirs
under `<store>/code-images/` (each kind bounded by `environment.docker.max_images`).
Docker is asked only when the configured builder is `docker` (or `--builder docker`), so
listing needs no daemon otherwise.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from bisector.builders.envcache import EnvCache
from bisector.config import Config
from bisector.errors import BisectorError


@dataclass(frozen=True)
class CacheEntry:
    kind: str  # "venv" | "docker"
    key: str
    where: str  # folder or image tag
    size_bytes: int | None
    in_store: bool  # False: a bisector image this store does not know

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _folder_size(folder: Path) -> int | None:
    """Bytes of the files under `folder` (links not followed); None when it is gone."""
    if not folder.is_dir():
        return None
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while walking
                continue
    return total


def _store(repo: Path, cfg: Config) -> Path:
    return repo.resolve() / cfg.snapshots.store


def list_cache(repo: Path, cfg: Config, *, builder: str | None = None) -> list[CacheEntry]:
    """Cached environments (least recently used first), then docker images."""
    store = _store(repo, cfg)
    entries: list[CacheEntry] = []
    envs = store / "envs"
    if envs.is_dir():
        cache = EnvCache(envs, cfg.environment.cache_size)
        entries += [
            CacheEntry("venv", k, str(cache.path(k)), _folder_size(cache.path(k)), True)
            for k in cache.keys()
        ]
    if (builder or cfg.environment.builder) == "docker":
        from bisector.builders.docker_images import list_images
        from bisector.builders.docker_run import connect

        client = connect()
        try:
            limit = cfg.environment.docker.max_images
            known = {
                *EnvCache(store / "images", limit).keys(),
                *EnvCache(store / "code-images", limit).keys(),
            }
            entries += [
                CacheEntry("docker", i.key, i.tag, i.size_bytes, i.key in known)
                for i in list_images(client)
            ]
        finally:
            client.close()
    return entries


def prune_cache(
    repo: Path,
    cfg: Config,
    *,
    builder: str | None = None,
    keep: int | None = None,
    orphans: bool = False,
) -> list[str]:
    """Remove what lies beyond the configured sizes (or `keep`); the removed folders/tags.

    :raises BisectorError: a run or a daemon cycle holds the store's run lock: its trials
        may be running in the environments that would go (and it would rebuild them).
    """
    from bisector.store.runlock import RunLockedError, run_lock

    store = _store(repo, cfg)
    if not store.is_dir():  # no store: no run to wait for, and none is created for the lock
        return _prune(store, cfg, builder=builder, keep=keep, orphans=orphans)
    try:
        with run_lock(store, what="a bisection"):
            return _prune(store, cfg, builder=builder, keep=keep, orphans=orphans)
    except RunLockedError as exc:
        raise BisectorError(
            f"cannot prune the cache while a bisector run (pid {exc.pid or '?'}) is using "
            f"{store}: its trials may run in the environments that would be removed",
            hint="wait for it to finish (the lock is released when that process exits)",
        ) from None


def _prune(
    store: Path, cfg: Config, *, builder: str | None, keep: int | None, orphans: bool
) -> list[str]:
    removed: list[str] = []
    if (store / "envs").is_dir():
        cache = EnvCache(store / "envs", keep if keep is not None else cfg.environment.cache_size)
        removed += [str(cache.path(k)) for k in cache.remove_unfinished()]
        removed += [str(cache.path(k)) for k in cache.evict(in_use=())]
    if (builder or cfg.environment.builder) == "docker":
        from bisector.builders.docker_images import prune_images
        from bisector.builders.docker_run import connect

        client = connect()
        try:
            limit = keep if keep is not None else cfg.environment.docker.max_images
            removed += prune_images(client, store, limit, orphans=orphans)
        finally:
            client.close()
    return removed
