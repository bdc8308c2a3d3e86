"""A count-bounded LRU of built environments under `<store>/envs/`.

Each environment is a folder `<root>/<key>/`, complete once its marker file exists
(written last, so a crash mid-build leaves an incomplete folder that is rebuilt). Last-use
times live in `<root>/index.json`, written atomically under a file lock, so two bisector
processes sharing a store keep one consistent order. Eviction removes the least recently
used complete environments beyond `capacity`, never a key the caller says is in use.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock, Timeout

from bisector.log import get_logger

log = get_logger(__name__)

MARKER = "bisector-env.json"
_INDEX = "index.json"


class EnvCache:
    def __init__(self, root: Path, capacity: int) -> None:
        self.root = root
        self.capacity = capacity
        root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(root / ".index.lock"))

    def path(self, key: str) -> Path:
        return self.root / key

    def is_complete(self, key: str) -> bool:
        return (self.root / key / MARKER).is_file()

    def lock(self, key: str) -> FileLock:
        """A per-key lock across processes: held while the key is built or changed."""
        (self.root / ".locks").mkdir(exist_ok=True)
        return FileLock(str(self.root / ".locks" / f"{key}.lock"))

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads((self.root / _INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, index: dict[str, float]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".index-", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(index, fh, sort_keys=True)
            os.replace(tmp, self.root / _INDEX)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def touch(self, key: str) -> None:
        with self._lock:
            index = self._read()
            index[key] = max(time.time(), index.get(key, 0.0) + 1e-6)
            self._write(index)

    def keys(self) -> list[str]:
        """Complete environments, least recently used first."""
        with self._lock:
            return self._ordered(self._read())

    def _ordered(self, index: dict[str, float]) -> list[str]:
        present = [p.name for p in self.root.iterdir() if p.is_dir() and (p / MARKER).is_file()]
        # A folder missing from the index (older store, lost index) counts by its mtime.
        return sorted(present, key=lambda k: index.get(k, (self.root / k).stat().st_mtime))

    def evict(self, in_use: Iterable[str]) -> list[str]:
        """Remove the least recently used environments beyond capacity; the removed keys."""
        keep = set(in_use)
        removed: list[str] = []
        with self._lock:
            index = self._read()
            ordered = self._ordered(index)
            excess = len(ordered) - self.capacity
            for key in ordered:
                if excess <= 0:
                    break
                if key in keep:
                    continue
                key_lock = self.lock(key)
                try:
                    key_lock.acquire(timeout=0)
                except Timeout:  # being built or installed into, here or in another process
                    continue
                try:
                    self.remove_folder(key)
                finally:
                    key_lock.release()
                index.pop(key, None)
                removed.append(key)
                excess -= 1
            self._write({k: v for k, v in index.items() if k not in removed})
        if removed:
            log.info("evicted environments", keys=removed, capacity=self.capacity)
        return removed

    def remove_unfinished(self) -> list[str]:
        """Remove the folders of builds that never finished (no marker: the build was
        killed) and are not being built now, here or in another process; their keys."""
        removed: list[str] = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir() or (folder / MARKER).exists():
                continue
            key_lock = self.lock(folder.name)
            try:
                key_lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                self.remove_folder(folder.name)
            finally:
                key_lock.release()
            removed.append(folder.name)
        if removed:
            log.info("removed unfinished environments", keys=removed)
        return removed

    def remove_folder(self, key: str) -> None:
        # The marker goes first: a half-removed folder is then "incomplete", not "ready".
        (self.root / key / MARKER).unlink(missing_ok=True)
        shutil.rmtree(self.root / key, ignore_errors=True)
