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
import time
from pathlib import Path
from typing import ClassVar

from bisector.builders.base import BuiltEnv, RuntimeFacts, checkout_pythonpath
from bisector.builders.envcache import EnvCache
from bisector.builders.keyed import CachedEnv, KeyedBuilder, failures_logged
from bisector.builders.requirements import RequirementSet, environment_key
from bisector.builders.uvtool import find_uv, run_logged, translate_install
from bisector.config import Environment
from bisector.core.types import Commit
from bisector.log import get_logger
from bisector.ports import Vcs

log = get_logger(__name__)

_FACTS = (
    "import json, platform, sys; print(json.dumps({'python_version': platform.python_version(),"
    " 'implementation': sys.implementation.name, 'platform': platform.platform()}))"
)


class VenvBuilder(KeyedBuilder[RequirementSet]):
    """uv-built virtual environments shared by key, prefetched in the background."""

    name: ClassVar[str] = "venv"
    _thread_prefix: ClassVar[str] = "bisector-env"
    _failure_note: ClassVar[str] = "background build failed"

    def __init__(
        self,
        vcs: Vcs,
        environment: Environment,
        store: Path,
        *,
        max_workers: int = 2,
        build_timeout_s: float = 3600.0,
    ) -> None:
        super().__init__(
            vcs,
            environment,
            store,
            EnvCache(store / "envs", environment.cache_size),
            max_workers=max_workers,
            build_timeout_s=build_timeout_s,
        )
        self._uv_cache = store / "uv-cache"
        self._uv = find_uv()
        self._python_spec = environment.python or sys.executable
        # The key names the interpreter by version, not by path: the same Python in
        # another venv or after a reinstall gives the same environments.
        self._python_key = environment.python or (
            f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}"
        )
        self._installed: dict[str, str] = {}  # key -> sha last installed into it

    def _recipe(self, commit: Commit) -> tuple[str, RequirementSet]:
        reqs = self._read_requirements(commit)
        return environment_key(
            reqs, python=self._python_key, index=self._index.key_material()
        ), reqs

    # -- building -------------------------------------------------------------------

    def _uv_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["UV_CACHE_DIR"] = str(self._uv_cache)
        return env

    def _build(self, key: str, reqs: RequirementSet) -> CachedEnv:
        self._installed.pop(key, None)  # a rebuilt environment holds no install yet
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

                def run(argv: list[str], what: str, extra_env: dict[str, str] | None = None) -> str:
                    return run_logged(
                        argv,
                        log=out,
                        env=env,
                        cwd=self._cache.root,
                        timeout_s=self._build_timeout_s,
                        log_path=log_path,
                        what=what,
                        extra_env=extra_env,
                    )

                run(
                    [
                        self._uv,
                        "venv",
                        "--no-config",
                        "--no-project",
                        "--python",
                        self._python_spec,
                        str(path),
                    ],
                    "creating the virtual environment",
                )
                python = path / "bin" / "python"
                with failures_logged(out, log_path):
                    files = reqs.materialize(staging)
                for missing in reqs.absent():  # the log and a warning: else a trial's
                    # "No module named ..." is all that says why
                    out.write(f"note: {missing} is not in this commit: built without it\n")
                    log.warning("requirement file not in this commit", file=missing, env=key)
                if files:
                    args = [self._uv, "pip", "install", "--no-config", "--python", str(python)]
                    for f in files:
                        args += ["-r", str(f)]
                    run(args + self._index.args(), "installing requirements", self._index.env())
                listed = run(
                    [
                        self._uv,
                        "pip",
                        "list",
                        "--no-config",
                        "--format",
                        "json",
                        "--python",
                        str(python),
                    ],
                    "listing packages",
                )
                facts = run([str(python), "-I", "-c", _FACTS], "reading runtime facts")
            packages = tuple(sorted((p["name"], p["version"]) for p in json.loads(listed)))
            built = CachedEnv(key, packages, RuntimeFacts(**json.loads(facts)), log_path)
            built.save(path)
        except BaseException:
            self._cache.remove_folder(key)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info(
            "environment built",
            key=key,
            packages=len(packages),
            seconds=round(time.monotonic() - started, 2),
        )
        return built

    # -- a candidate ------------------------------------------------------------------

    def _ready(
        self,
        built: CachedEnv,
        reqs: RequirementSet,  # noqa: ARG002 (the skeleton's hook; a venv needs only `built`)
        commit: Commit,
        checkout: Path,
    ) -> BuiltEnv:
        path = self._cache.path(built.key)
        python = path / "bin" / "python"
        variables = {
            "VIRTUAL_ENV": str(path),
            "PATH": os.pathsep.join([str(path / "bin"), os.environ.get("PATH", os.defpath)]),
            "PYTHONPATH": "",
        }
        if self._config.install:
            self._install(built.key, python, commit, checkout, variables)
        else:
            variables["PYTHONPATH"] = checkout_pythonpath(checkout)
        return BuiltEnv(
            built.key, python, checkout, variables, built.packages, built.runtime, built.build_log
        )

    def _install(
        self, key: str, python: Path, commit: Commit, checkout: Path, variables: dict[str, str]
    ) -> None:
        assert self._config.install is not None
        with self._cache.lock(key):
            if self._installed.get(key) == commit.sha:
                return
            log_path = self._logs / f"{key}-install-{commit.short}.log"
            argv, index_env = translate_install(
                self._config.install, uv=self._uv, python=python, index=self._index
            )
            env = {**self._uv_env(), **variables}
            with log_path.open("w", encoding="utf-8") as out:
                run_logged(
                    argv,
                    log=out,
                    env=env,
                    cwd=checkout,
                    timeout_s=self._build_timeout_s,
                    log_path=log_path,
                    what=f"installing {commit.short}",
                    extra_env=index_env,
                )
            self._installed[key] = commit.sha
