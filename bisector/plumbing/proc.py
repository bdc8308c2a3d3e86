"""Commands in a process group of their own, killed as a group.

`run_in_group` starts an argv (never through a shell) in a new session, so it leads a
new process group, waits up to a timeout (or until `should_stop` says so) and then kills
the whole group, grandchildren included: SIGTERM, a grace period, SIGKILL. It does the
same when the caller is interrupted (Ctrl-C) while waiting, and by default also after a
normal exit, so a stray background process cannot outlive its command.

Output goes where the caller says (files, not pipes: a grandchild that keeps a pipe open
cannot hang us). Process groups do not contain a process that calls `setsid()` itself.
Used by the benchmark trials (`engine.runner`) and the rollback health check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bisector.log import get_logger

__all__ = ["DEFAULT_GRACE_S", "GroupRun", "kill_group", "run_in_group"]

log = get_logger(__name__)

DEFAULT_GRACE_S = 2.0
_REAP_S = 1.0  # after SIGKILL: the least time given to the leader to be reaped
_POLL_S = 0.02

Sink = IO[bytes] | int


@dataclass(frozen=True)
class GroupRun:
    """How a command in its own group ended."""

    returncode: int | None  # negative: killed by that signal; None: could not be reaped
    timed_out: bool
    stopped: bool  # `should_stop` said so before it exited
    duration_s: float


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # macOS reports a group of zombies this way
        return False
    return True


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = DEFAULT_GRACE_S) -> None:
    """SIGTERM the group `proc` leads, wait up to `grace_s` for all of it, then SIGKILL."""
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _signal_group(pgid, 0):
                break
            time.sleep(_POLL_S)
        _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=max(grace_s, _REAP_S))
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL not delivered
        log.warning("process did not die", pid=proc.pid)


def run_in_group(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    stdout: Sink,
    stderr: Sink,
    grace_s: float = DEFAULT_GRACE_S,
    should_stop: Callable[[], bool] | None = None,
    kill_strays: bool = True,
) -> GroupRun:
    """Run `argv` in its own process group for at most `timeout_s` seconds (monotonic).

    `should_stop` is polled while waiting; True ends the command like a timeout does.
    `kill_strays`: kill the group after a normal exit too.
    :raises OSError: the command cannot be started.
    """
    start = time.monotonic()
    deadline = start + max(timeout_s, 0.0)
    proc = subprocess.Popen(  # noqa: S603 - an argv, no shell
        list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        start_new_session=True,
    )
    timed_out = stopped = False
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if should_stop is not None and should_stop():
                stopped = True
                break
            wait_s = deadline - now if should_stop is None else min(0.05, deadline - now)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait_s)
    except BaseException:
        kill_group(proc, grace_s)
        raise
    if timed_out or stopped or kill_strays:
        kill_group(proc, grace_s)
    return GroupRun(proc.returncode, timed_out, stopped, time.monotonic() - start)
