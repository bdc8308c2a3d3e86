"""The `TrialLauncher` adapter of `benchmark.preload`, and the servers of one run.

`PreloadPool` owns the run's servers, one per (environment key, interpreter, start
environment): a commit whose environment key differs gets another server, never one
whose imports came from a different environment. It keeps the two most recently used
(a bisection alternates between at most two environments near the culprit) and stops
the rest; `close()` at the end of the run stops them all. A server found dead before a
trial is started again; one that dies during a trial fails that trial (the retry rule
retries it once, on a fresh server).

`pool.launcher(built)` is the adapter: a callable with `runner.run_trial`'s signature
(`ports.TrialLauncher`) that the runner calls instead of starting a process. It strips
the interpreter from the argv (`python -m MOD ...` / `python SCRIPT ...`), sends the
rest to the server, and classifies the exit like any trial (`runner.classify`). When an
environment cannot import the preload modules (say an old commit's venv lacks one), its
trials run as fresh processes instead, with a warning, so that commit measures as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bisector.engine.runner import classify, run_trial
from bisector.log import get_logger
from bisector.plumbing.proc import TOKEN_VAR
from bisector.ports import BuiltEnv, TrialLauncher, TrialResult
from bisector.preload.server import PreloadError, PreloadServer, ServerGone

log = get_logger(__name__)

KEEP_SERVERS = 2
START_TIMEOUT_S = 600.0  # importing torch on a cold disk can take minutes


def server_environ(env: Mapping[str, str], roots: Sequence[Path]) -> dict[str, str]:
    """The environment a server starts with: the trial's, less the per-trial token and the
    PYTHONPATH entries inside the repository (checkouts: each trial puts its own back)."""
    started = {k: v for k, v in env.items() if k != TOKEN_VAR}
    if "PYTHONPATH" in started:
        kept = [
            p
            for p in started["PYTHONPATH"].split(os.pathsep)
            if p and not any(_inside(Path(p), root) for root in roots)
        ]
        started["PYTHONPATH"] = os.pathsep.join(kept)
    return started


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _refuse_repository_entries(modules: Sequence[str], checkout: Path) -> None:
    """An entry naming a module of the checkout (`pkg`, `src/pkg`) is an error: the server
    never sees the checkout, so it would otherwise just fail to import it."""
    for module in modules:
        top = module.split(".")[0]
        for base in (checkout, checkout / "src"):
            if (base / f"{top}.py").is_file() or (base / top).is_dir():
                raise PreloadError(
                    f"benchmark.preload: {module} is a module of the repository under test "
                    f"({base / top}); its code differs per commit and is never preloaded",
                    hint="list only third-party modules (torch, transformers, ...)",
                )


class PreloadPool:
    """The preload servers of one run (thread-safe)."""

    def __init__(self, modules: Sequence[str], *, repo_root: Path, log_dir: Path) -> None:
        self.modules = tuple(modules)
        self.repo_root = repo_root
        _refuse_repository_entries(self.modules, repo_root)  # before any trial, and per checkout
        self.log_dir = log_dir
        self._servers: OrderedDict[str, PreloadServer] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._cold: set[str] = set()  # keys whose interpreter cannot import the modules
        self._lock = threading.Lock()
        self._warned_docker = False
        self.started = 0  # servers started (restarts included), for tests and logs

    def launcher(self, built: BuiltEnv) -> TrialLauncher:
        """The adapter that runs `built`'s trials through its environment's server.

        A builder's own launcher (docker: a container per trial) is kept: a container's
        checkout mount is fixed when it starts, so no server can outlive one commit.
        """
        if built.launcher is not None:
            if not self._warned_docker:
                self._warned_docker = True
                log.warning("benchmark.preload is not used with containers: trials start cold")
            return built.launcher
        pool, env_key = self, built.env_key

        def launch(
            argv: Sequence[str],
            *,
            cwd: Path,
            env: Mapping[str, str],
            timeout_s: float,
            stdout_path: Path,
            stderr_path: Path,
            grace_s: float,
        ) -> TrialResult:
            return pool.trial(
                env_key,
                argv,
                cwd=cwd,
                env=env,
                timeout_s=timeout_s,
                stdout_path=stdout_path,
                stderr_path=stderr_path,
                grace_s=grace_s,
            )

        return launch

    def _key(self, env_key: str, python: str, env: Mapping[str, str]) -> str:
        payload = json.dumps([env_key, python, sorted(env.items())])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _server(self, key: str, python: str, env: Mapping[str, str]) -> PreloadServer | None:
        """The live server of `key`, started (again) when needed; None: run cold."""
        with self._lock:
            if key in self._cold:
                return None
            server = self._servers.get(key)
            if server is not None and not server.alive:
                log.warning("preload server died; starting another", pid=server.proc.pid)
                server.kill()
                server = None
            if server is not None:
                self._servers.move_to_end(key)
                return server
            while len(self._servers) >= KEEP_SERVERS:
                _, oldest = self._servers.popitem(last=False)
                oldest.close()
            try:
                server = PreloadServer(
                    Path(python),
                    self.modules,
                    roots=(self.repo_root,),
                    env=env,
                    log_path=self.log_dir / f"preload-{key}.log",
                    start_timeout_s=START_TIMEOUT_S,
                )
            except ServerGone as exc:
                log.warning("preload unavailable here: trials run as fresh processes", why=str(exc))
                self._cold.add(key)
                return None
            self.started += 1
            self._servers[key] = server
            self._locks.setdefault(key, threading.Lock())
            return server

    def trial(
        self,
        env_key: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout_s: float,
        stdout_path: Path,
        stderr_path: Path,
        grace_s: float,
    ) -> TrialResult:
        """One trial of `python ARGS` through the server of its environment."""
        python, args = argv[0], list(argv[1:])
        _refuse_repository_entries(self.modules, cwd)
        started_env = server_environ(env, (self.repo_root, cwd))
        key = self._key(env_key, python, started_env)
        # Only `python -m MOD ...` and `python SCRIPT ...` can be run by the server.
        runnable = bool(args) and (
            not args[0].startswith("-") or (args[0] == "-m" and len(args) > 1)
        )
        server = self._server(key, python, started_env) if runnable else None
        if server is None:
            return run_trial(
                argv,
                cwd=cwd,
                env=env,
                timeout_s=timeout_s,
                stdout_path=stdout_path,
                stderr_path=stderr_path,
                grace_s=grace_s,
            )
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        stdout_path.touch()
        stderr_path.touch()
        with self._locks[key]:  # one trial at a time per server, as one process per trial
            try:
                done = server.run(
                    args,
                    cwd=cwd,
                    env=env,
                    timeout_s=timeout_s,
                    stdout_path=stdout_path,
                    stderr_path=stderr_path,
                    grace_s=grace_s,
                )
            except ServerGone as exc:
                with stderr_path.open("ab") as err:
                    err.write(f"\nbisector: the preload server died: {exc}\n".encode())
                server.kill()
                failed = classify(
                    None,
                    timed_out=False,
                    timeout_s=timeout_s,
                    duration_s=0.0,
                    stdout_path=stdout_path,
                    stderr_path=stderr_path,
                )
                return replace(failed, reason="the preload server died during the trial")
        return classify(
            None if done.timed_out else done.returncode,
            timed_out=done.timed_out,
            timeout_s=timeout_s,
            duration_s=done.duration_s,
            stdout_path=stdout_path,
            stderr_path=stderr_path,
        )

    def close(self) -> None:
        """Stop every server (the end of the run)."""
        with self._lock:
            while self._servers:
                _, server = self._servers.popitem(last=False)
                server.close()

    def __enter__(self) -> PreloadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
