"""One preload server seen from bisector: start it, run trials through it, stop it.

The server (`_server.py`, run by the environment's own interpreter) talks JSON lines over
its stdin/stdout pipes. It leads a session of its own, so a Ctrl-C at the terminal reaches
bisector only, which then stops it; and it exits by itself when its stdin closes, so it
dies with the run even when bisector is killed.

A trial's child leads its own process group (it calls `setsid()` after the fork), and
this side kills that group: on timeout (SIGTERM, the grace, SIGKILL), after a normal exit
(strays), and when interrupted, like `plumbing.proc.run_in_group` does for a fresh
process; processes that escaped the group are found by the run token in their
environment (`sweep_escaped`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisector.errors import BisectorError
from bisector.log import get_logger
from bisector.plumbing.proc import TOKEN_VAR, become_subreaper, group_left, sweep_escaped

log = get_logger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("_server.py")
_POLL_S = 0.02
_REAP_S = 1.0


class PreloadError(BisectorError):
    """The preload server cannot serve this run (it would share the repository's code, or
    CUDA, between trials)."""


class ServerGone(Exception):
    """The server's pipe closed: it died (it is restarted for the next trial)."""


@dataclass(frozen=True)
class ForkedRun:
    """How a forked trial ended (`plumbing.proc.GroupRun`'s fields that matter here)."""

    returncode: int | None  # negative: killed by that signal; None: never reported
    timed_out: bool
    duration_s: float
    pid: int | None


class PreloadServer:
    """A running server process for one environment (key, interpreter, start environment)."""

    def __init__(
        self,
        python: Path,
        modules: Sequence[str],
        *,
        roots: Sequence[Path],
        env: Mapping[str, str],
        log_path: Path,
        start_timeout_s: float,
    ) -> None:
        self.python, self.modules, self.roots = python, tuple(modules), tuple(roots)
        self.log_path = log_path
        argv = [str(python), str(SERVER_SCRIPT)]
        for module in modules:
            argv += ["--module", module]
        for root in roots:
            argv += ["--forbid", str(root)]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as err:
            self.proc = subprocess.Popen(
                argv,
                env=dict(env),
                cwd="/",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        self._buffer = b""
        try:
            ready = self._read(time.monotonic() + start_timeout_s)
        except ServerGone:
            ready = {"event": "error", "kind": "died", "error": "the server exited at start"}
        if ready is None:
            ready = {"event": "error", "kind": "timeout", "error": "no answer at start"}
        if ready.get("event") != "ready":
            self.kill()
            message = str(ready.get("error", ready))
            if "repository under test" in message or "CUDA" in message:
                raise PreloadError(
                    f"benchmark.preload: {message}",
                    hint="preload only third-party modules that do not touch the GPU at import",
                )
            raise ServerGone(f"{message} (log: {log_path})")
        self.ready: dict[str, Any] = ready
        log.info("preload server ready", pid=self.proc.pid, import_s=ready.get("import_s"))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _send(self, message: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ServerGone("the server's pipe is closed") from exc

    def _read(self, deadline: float) -> dict[str, Any] | None:
        """The next message, None at `deadline`. :raises ServerGone: at end of output."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ServerGone("the server's output closed")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout_s: float,
        stdout_path: Path,
        stderr_path: Path,
        grace_s: float,
    ) -> ForkedRun:
        """Run `python ARGV` (argv without the interpreter) as a forked child.

        :raises PreloadError: the server refuses (repository code or CUDA loaded in it).
        :raises ServerGone: the server died; the trial's group is killed first.
        """
        start = time.monotonic()
        deadline = start + max(timeout_s, 0.0)
        token = uuid.uuid4().hex
        become_subreaper()  # orphans of the trial come to us, not to the server or PID 1
        self._send(
            {
                "op": "run",
                "argv": list(argv),
                "cwd": str(cwd),
                "env": {**env, TOKEN_VAR: token},
                "stdout": str(stdout_path),
                "stderr": str(stderr_path),
            }
        )
        try:
            started = self._read(deadline + _REAP_S)
        except BaseException:
            self.kill()  # closing its input makes the server kill the trial it may have forked
            raise
        if started is None:
            self.kill()
            raise ServerGone("the server did not start the trial")
        if started.get("event") == "refused":
            raise PreloadError(f"benchmark.preload: {started.get('error')}")
        pid = int(started["pid"])
        code: int | None = None
        timed_out = False
        try:
            message = self._read(deadline)
            if message is None:
                timed_out = True
                message = self._stop_group(pid, grace_s)
            if message is not None:
                code = int(message["status"])
        except BaseException:
            _kill_group(pid, grace_s)
            sweep_escaped(token, grace_s)
            self.kill()  # its state is unknown now: the next trial gets a fresh server
            raise
        _kill_group(pid, grace_s)  # strays, as after a fresh process's exit
        sweep_escaped(token, grace_s)
        return ForkedRun(code, timed_out, time.monotonic() - start, pid)

    def _stop_group(self, pgid: int, grace_s: float) -> dict[str, Any] | None:
        """Timeout: SIGTERM the trial's group, SIGKILL after `grace_s`; its exit message."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, _REAP_S)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            message = self._read(time.monotonic() + wait_s)
            if message is not None:
                return message
        return None

    def close(self) -> None:
        """Ask the server to stop, then make sure it did."""
        if self.alive:
            with contextlib.suppress(ServerGone):
                self._send({"op": "stop"})
        self.kill(wait_s=2.0)

    def kill(self, wait_s: float = 0.0) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=wait_s)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=_REAP_S)


def _kill_group(pgid: int, grace_s: float) -> None:
    """SIGTERM what is left of a trial's group, SIGKILL after `grace_s` (no-op when gone)."""
    if not group_left(pgid):
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, _REAP_S)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait_s
        while group_left(pgid):
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        else:
            return
