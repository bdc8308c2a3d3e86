"""What the venv and docker builders share: one environment per key, cached, prefetched.

Both turn a commit into a *recipe* (what to build) and its environment key, read from git
objects once per commit; both keep built environments in a count-bounded LRU on disk
(`EnvCache`, or `ImageCache` whose entries are images), build each key at most once at a
time (`BuildOnce`, also across processes through the cache's per-key file lock), and build
the environments of upcoming candidates in background threads. `KeyedBuilder` holds that
machinery; a subclass says only how its recipe is read, how an environment is built, and
how a candidate's trials use it (`_recipe`, `_build`, `_ready`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, Generic, TypeVar

from bisector.builders.base import BuiltEnv, RuntimeFacts
from bisector.builders.envcache import MARKER, EnvCache
from bisector.builders.once import BuildOnce
from bisector.builders.requirements import RequirementSet, read_requirements
from bisector.builders.uvtool import IndexOptions
from bisector.config import Environment
from bisector.core.types import Commit
from bisector.errors import BuildError
from bisector.log import get_logger
from bisector.ports import Vcs

R = TypeVar("R")  # a builder's recipe: what its `_build` needs besides the key


@dataclass(frozen=True)
class CachedEnv:
    """What a built environment holds, as its cache entry's marker file records it."""

    key: str
    packages: tuple[tuple[str, str], ...]  # resolved (name, version), sorted by name
    runtime: RuntimeFacts
    build_log: Path

    @classmethod
    def load(cls, folder: Path) -> CachedEnv:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return cls(
            data["key"],
            tuple((n, v) for n, v in data["packages"]),
            RuntimeFacts(**data["runtime"]),
            Path(data["build_log"]),
        )

    def save(self, folder: Path, **extra: str) -> None:
        """Write the marker into `folder` (atomically, and last: the entry is then complete)."""
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "key": self.key,
            **extra,
            "packages": [list(p) for p in self.packages],
            "runtime": self.runtime.as_dict(),
            "build_log": str(self.build_log),
            "created": time.time(),
        }
        tmp = folder / (MARKER + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, folder / MARKER)


@contextmanager
def failures_logged(out: IO[str], log_path: Path) -> Iterator[None]:
    """A `BuildError` raised inside without a log (a requirement file bisector itself
    cannot read or translate) is written to the build log and raised again naming it, so
    the untestable candidate's log says why, as one of uv's or pip's failures would."""
    try:
        yield
    except BuildError as exc:
        if exc.log_path is not None:
            raise
        out.write(f"error: {exc.message}\n" + (f"hint: {exc.hint}\n" if exc.hint else ""))
        out.flush()
        raise BuildError(
            exc.message, hint=exc.hint or f"see the build log {log_path}", log_path=log_path
        ) from exc


class KeyedBuilder(ABC, Generic[R]):
    """Environments shared by key, kept in an LRU and built in the background (the
    `EnvBuilder` port but for `_recipe`, `_build` and `_ready`)."""

    name: ClassVar[str]
    isolates_dependencies: ClassVar[bool] = True
    #: names the background threads and the warning when a background build fails
    _thread_prefix: ClassVar[str]
    _failure_note: ClassVar[str]

    def __init__(
        self,
        vcs: Vcs,
        environment: Environment,
        store: Path,
        cache: EnvCache,
        *,
        max_workers: int,
        build_timeout_s: float,
    ) -> None:
        self._vcs = vcs
        self._config = environment
        self._cache = cache
        self._logs = store / "logs" / "build"
        self._index = IndexOptions.from_config(environment, vcs.root)
        self._build_timeout_s = build_timeout_s
        self._lock = threading.Lock()
        self._git_lock = threading.Lock()  # GitPython's cat-file pipes are not thread-safe
        self._recipes: dict[str, tuple[str, R]] = {}
        self._once: BuildOnce[CachedEnv] = BuildOnce(self._lock)
        self._in_use: str | None = None
        self._builds_done = 0
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=self._thread_prefix
        )

    # -- what a builder says --------------------------------------------------------

    @abstractmethod
    def _recipe(self, commit: Commit) -> tuple[str, R]:
        """`commit`'s environment key and recipe, from git objects (called under the git lock)."""

    @abstractmethod
    def _build(self, key: str, recipe: R) -> CachedEnv:
        """Build `key`'s environment into its cache entry (called under the key's lock).

        :raises BuildError: naming the kept build log.
        """

    @abstractmethod
    def _ready(self, built: CachedEnv, recipe: R, commit: Commit, checkout: Path) -> BuiltEnv:
        """`commit`'s `BuiltEnv`, its environment `built` (any per-commit step runs here)."""

    # -- keys -----------------------------------------------------------------------

    def _read_requirements(self, commit: Commit) -> RequirementSet:
        """The configured requirement files at `commit` (call under the git lock)."""
        return read_requirements(
            lambda path: self._vcs.read_file(commit.sha, path),
            self._config.requirements,
            self._config.extras,
        )

    def _keyed(self, commit: Commit) -> tuple[str, R]:
        with self._lock:
            cached = self._recipes.get(commit.sha)
        if cached is not None:
            return cached
        with self._git_lock:
            entry = self._recipe(commit)
        with self._lock:
            self._recipes[commit.sha] = entry
        return entry

    def env_key(self, commit: Commit) -> str:
        return self._keyed(commit)[0]

    @property
    def builds_done(self) -> int:
        return self._builds_done

    # -- building -------------------------------------------------------------------

    def _obtain(self, key: str, recipe: R) -> CachedEnv:
        """The environment for `key`: from disk, from a build in progress, or built now."""
        return self._once.get(key, lambda: self._load_or_build(key, recipe))

    def _load_or_build(self, key: str, recipe: R) -> CachedEnv:
        with self._cache.lock(key):  # another process may be building the same key
            if self._cache.is_complete(key):
                return CachedEnv.load(self._cache.path(key))
            built = self._build(key, recipe)
            with self._lock:
                self._builds_done += 1
                others_building = bool(set(self._once.building) - {key})
                in_use = {*self._once.building, key, *([self._in_use] if self._in_use else [])}
        self._cache.touch(key)
        # Evicting while another build runs can delete what that build stands on (docker's
        # builder reuses other images' layers as cache; removing an image removes its
        # untagged layers): the last build of a burst evicts for all of them.
        if not others_building:
            self._cache.evict(in_use)
        return built

    # -- the port ---------------------------------------------------------------------

    def prefetch(self, commits: Sequence[Commit]) -> None:
        for commit in commits:
            key, recipe = self._keyed(commit)
            with self._lock:
                busy = key in self._once.building or key in self._once.failed
            if not busy and not self._cache.is_complete(key):
                self._pool.submit(self._prefetch_one, key, recipe)

    def _prefetch_one(self, key: str, recipe: R) -> None:
        try:
            self._obtain(key, recipe)
        except BuildError:
            pass  # remembered by BuildOnce; raised by prepare()
        except Exception as exc:
            get_logger(type(self).__module__).warning(self._failure_note, key=key, error=str(exc))

    def prepare(self, commit: Commit, checkout: Path) -> BuiltEnv:
        key, recipe = self._keyed(commit)
        with self._lock:
            self._in_use = key
        built = self._obtain(key, recipe)
        self._cache.touch(key)
        return self._ready(built, recipe, commit, checkout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
