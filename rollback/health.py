"""The post-switch health check: an argv run without a shell, killed as a group on timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    reason: str  # "passed", "exit 3", "timed out after 2.0s", "cannot start: ..."
    returncode: int | None
    output_tail: str
    seconds: float


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The check may have started children (a server probe, a shell script): kill them all.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_health_check(
    argv: Sequence[str],
    *,
    cwd: Path,
    budget_s: float,
    env: Mapping[str, str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> HealthResult:
    """Run `argv` for at most `budget_s` seconds (monotonic clock); exit 0 is healthy."""
    start = time.monotonic()
    deadline = start + max(budget_s, 0.0)
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,  # a file, not a pipe: a chatty check cannot block on a full pipe
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout kills all of it
            )
        except OSError as exc:
            return HealthResult(False, f"cannot start: {exc.strerror or exc}", None, "", 0.0)
        reason: str | None = None
        while proc.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                reason = f"timed out after {budget_s:.1f}s"
            elif should_stop():
                reason = "stopped by SIGTERM"
            if reason is not None:
                _kill_group(proc)
                break
            try:
                proc.wait(timeout=min(0.05, deadline - now))
            except subprocess.TimeoutExpired:
                pass
        out.seek(0)
        tail = out.read()[-2000:].decode("utf-8", "replace")
    rc = proc.returncode
    if reason is None:
        reason = "passed" if rc == 0 else f"exit {rc}"
    return HealthResult(reason == "passed", reason, rc, tail, time.monotonic() - start)
