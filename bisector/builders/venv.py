"""The `venv` builder: one uv virtual environment per environment key.

Key = sha256 of (normalized requirement files at the commit, Python, index options), see
`requirements.py`; commits that share pins share one environment under
`<store>/envs/<key>/`, kept in a count-bounded LRU (`environment.cache_size`). uv's own
cache is `<store>/uv-cache` (same filesystem as the envs, so uv can hardlink; uv falls
back to copying by itself where it cannot).

The project itself: without `install`, nothing of the commit goes into the shared
environment; the benchmark sees the checkout's code through `PYTHONPATH=<checkout>` (and
`<checkout>/src`), so environments stay pure functions of their key and can be shared,
prefetched and evicted freely. With `install` set (e.g. `pip install --no-deps -e .`),
the install runs into the shared environment right before the candidate's trials (under
the key's lock; skipped when the same commit was the last one installed there). This
mutates the shared environment, so two candidates with the same key must not be measured
at the same time; the pipeline measures one candidate at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bisector.builders.base import BuiltEnv, RuntimeFacts, checkout_pythonpath
from bisector.builders.envcache import MARKER, EnvCache
from bisector.builders.once import BuildOnce
from bisector.builders.requirements import RequirementSet, environment_key, read_requirements
from bisector.builders.uvtool import IndexOptions, find_uv, run_logged, translate_install
from bisector.config import Environment
from bisector.core.types import Commit
from bisector.errors import BuildError
from bisector.log import get_logger
from bisector.ports import Vcs

log = get_logger(__name__)

_FACTS = (
    "import json, platform, sys; print(json.dumps({'python_version': platform.python_version(),"
    " 'implementation': sys.implementation.name, 'platform': platform.platform()}))"
)


@dataclass(frozen=True)
class _Env:
    key: str
    path: Path
    packages: tuple[tuple[str, str], ...]
    runtime: RuntimeFacts
    build_log: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @classmethod
    def load(cls, path: Path) -> _Env:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
        return cls(
            data["key"], path, tuple((n, v) for n, v in data["packages"]),
            RuntimeFacts(**data["runtime"]), Path(data["build_log"]),
        )

    def save(self) -> None:
        data = {"key": self.key, "packages": [list(p) for p in self.packages],
                "runtime": self.runtime.as_dict(), "build_log": str(self.build_log),
                "created": time.time()}
        tmp = self.path / (MARKER + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path / MARKER)


class VenvBuilder:
    """uv-built virtual environments shared by key, prefetched in the background."""

    name: ClassVar[str] = "venv"
    isolates_dependencies: ClassVar[bool] = True

    def __init__(
        self, vcs: Vcs, environment: Environment, store: Path, *,
        max_workers: int = 2, build_timeout_s: float = 3600.0,
    ) -> None:
        self._vcs = vcs
        self._config = environment
        self._store = store
        self._cache = EnvCache(store / "envs", environment.cache_size)
        self._logs = store / "logs" / "build"
        self._uv_cache = store / "uv-cache"
        self._uv = find_uv()
        self._index = IndexOptions.from_config(environment, vcs.root)
        self._python_spec = environment.python or sys.executable
        # The key names the interpreter by version, not by path: the same Python in
        # another venv or after a reinstall gives the same environments.
        self._python_key = environment.python or (
            f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}"
        )
        self._build_timeout_s = build_timeout_s
        self._lock = threading.Lock()
        self._git_lock = threading.Lock()  # GitPython's cat-file pipes are not thread-safe
        self._reqs: dict[str, tuple[str, RequirementSet]] = {}
        self._once: BuildOnce[_Env] = BuildOnce(self._lock)
        self._installed: dict[str, str] = {}  # key -> sha last installed into it
        self._in_use: str | None = None
        self._builds_done = 0
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="bisector-env")

    # -- keys -----------------------------------------------------------------------

    def _requirements(self, commit: Commit) -> tuple[str, RequirementSet]:
        with self._lock:
            cached = self._reqs.get(commit.sha)
        if cached is not None:
            return cached
        with self._git_lock:
            reqs = read_requirements(
                lambda path: self._vcs.read_file(commit.sha, path), self._config.requirements,
                self._config.extras,
            )
        key = environment_key(reqs, python=self._python_key, index=self._index.key_material())
        with self._lock:
            self._reqs[commit.sha] = (key, reqs)
        return key, reqs

    def env_key(self, commit: Commit) -> str:
        return self._requirements(commit)[0]

    @property
    def builds_done(self) -> int:
        return self._builds_done

    # -- building -------------------------------------------------------------------

    def _uv_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["UV_CACHE_DIR"] = str(self._uv_cache)
        return env

    def _obtain(self, key: str, reqs: RequirementSet) -> _Env:
        """The environment for `key`: from disk, from a build in progress, or built now."""
        return self._once.get(key, lambda: self._load_or_build(key, reqs))

    def _load_or_build(self, key: str, reqs: RequirementSet) -> _Env:
        with self._cache.lock(key):  # another process may be building the same key
            if self._cache.is_complete(key):
                return _Env.load(self._cache.path(key))
            env = self._build(key, reqs)
            with self._lock:
                self._builds_done += 1
                self._installed.pop(key, None)
                in_use = {*self._once.building, key, *([self._in_use] if self._in_use else [])}
        self._cache.touch(key)
        self._cache.evict(in_use)
        return env

    def _build(self, key: str, reqs: RequirementSet) -> _Env:
        path = self._cache.path(key)
        self._cache.remove_folder(key)  # leftovers of an interrupted build
        self._logs.mkdir(parents=True, exist_ok=True)
        log_path = self._logs / f"{key}.log"
        staging = self._cache.root / ".requirements" / key
        shutil.rmtree(staging, ignore_errors=True)
        env = self._uv_env()
        started = time.monotonic()
        log.info("building environment", key=key)
        try:
            with log_path.open("w", encoding="utf-8") as out:
                def run(argv: list[str], what: str) -> str:
                    return run_logged(argv, log=out, env=env, cwd=self._cache.root,
                                      timeout_s=self._build_timeout_s, log_path=log_path, what=what)

                run([self._uv, "venv", "--no-config", "--no-project", "--python",
                     self._python_spec, str(path)], "creating the virtual environment")
                python = path / "bin" / "python"
                files = reqs.materialize(staging)
                if files:
                    args = [self._uv, "pip", "install", "--no-config", "--python", str(python)]
                    for f in files:
                        args += ["-r", str(f)]
                    run(args + self._index.args(), "installing requirements")
                listed = run([self._uv, "pip", "list", "--no-config", "--format", "json",
                              "--python", str(python)], "listing packages")
                facts = run([str(python), "-I", "-c", _FACTS], "reading runtime facts")
            packages = tuple(sorted((p["name"], p["version"]) for p in json.loads(listed)))
            built = _Env(key, path, packages, RuntimeFacts(**json.loads(facts)), log_path)
            built.save()
        except BaseException:
            self._cache.remove_folder(key)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("environment built", key=key, packages=len(packages),
                 seconds=round(time.monotonic() - started, 2))
        return built

    # -- the port ---------------------------------------------------------------------

    def prefetch(self, commits: Sequence[Commit]) -> None:
        for commit in commits:
            key, reqs = self._requirements(commit)
            with self._lock:
                busy = key in self._once.building or key in self._once.failed
            if not busy and not self._cache.is_complete(key):
                self._pool.submit(self._prefetch_one, key, reqs)

    def _prefetch_one(self, key: str, reqs: RequirementSet) -> None:
        try:
            self._obtain(key, reqs)
        except BuildError:
            pass  # remembered in _failed; raised by prepare()
        except Exception as exc:  # noqa: BLE001 - a background build must not vanish silently
            log.warning("background build failed", key=key, error=str(exc))

    def prepare(self, commit: Commit, checkout: Path) -> BuiltEnv:
        key, reqs = self._requirements(commit)
        with self._lock:
            self._in_use = key
        built = self._obtain(key, reqs)
        self._cache.touch(key)
        variables = {
            "VIRTUAL_ENV": str(built.path),
            "PATH": os.pathsep.join([str(built.path / "bin"), os.environ.get("PATH", os.defpath)]),
            "PYTHONPATH": "",
        }
        if self._config.install:
            self._install(built, commit, checkout, variables)
        else:
            variables["PYTHONPATH"] = checkout_pythonpath(checkout)
        return BuiltEnv(key, built.python, checkout, variables, built.packages, built.runtime,
                        built.build_log)

    def _install(self, built: _Env, commit: Commit, checkout: Path, variables: dict[str, str]) -> None:
        assert self._config.install is not None
        with self._cache.lock(built.key):
            if self._installed.get(built.key) == commit.sha:
                return
            log_path = self._logs / f"{built.key}-install-{commit.short}.log"
            argv = translate_install(self._config.install, uv=self._uv, python=built.python,
                                     extra=self._index.args())
            env = {**self._uv_env(), **variables}
            with log_path.open("w", encoding="utf-8") as out:
                run_logged(argv, log=out, env=env, cwd=checkout, timeout_s=self._build_timeout_s,
                           log_path=log_path, what=f"installing {commit.short}")
            self._installed[built.key] = commit.sha

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
