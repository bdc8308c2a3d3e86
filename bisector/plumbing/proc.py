"""Commands in a process group of their own, killed as a group.

`run_in_group` starts an argv (never through a shell) in a new session, so it leads a
new process group, waits up to a timeout (or until `should_stop` says so) and then kills
the whole group, grandchildren included: SIGTERM, a grace period, SIGKILL. It does the
same when the caller is interrupted (Ctrl-C) while waiting, and by default also after a
normal exit, so a stray background process cannot outlive its command.

Output goes where the caller says (files, not pipes: a grandchild that keeps a pipe open
cannot hang us). Used by the benchmark trials (`engine.runner`) and the rollback health
check.

Process groups do not contain a process that calls `setsid()` itself (a benchmark that
double-forks a server, say). So each command's environment carries a fresh token
(`BISECTOR_RUN_TOKEN`), and after the group is killed every process still carrying it
(`/proc/<pid>/environ`: inherited through forks and `setsid`) is killed the same way. On
Linux we are also a child subreaper (`PR_SET_CHILD_SUBREAPER`): such an escaped process
is reparented to us, not to PID 1, so we can reap it instead of leaving a zombie. Only a
process that also replaces its whole environment escapes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bisector.log import get_logger

__all__ = [
    "DEFAULT_GRACE_S",
    "TOKEN_VAR",
    "GroupRun",
    "become_subreaper",
    "group_left",
    "orphans_not_ours",
    "kill_group",
    "new_token",
    "run_in_group",
    "sweep_escaped",
]

log = get_logger(__name__)

DEFAULT_GRACE_S = 2.0
_REAP_S = 1.0  # after SIGKILL: the least time given to the leader to be reaped
_POLL_S = 0.02
TOKEN_VAR = "BISECTOR_RUN_TOKEN"
_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
_subreaper: bool | None = None

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
    """SIGTERM the group `proc` leads, wait up to `grace_s` for all of it, then SIGKILL;
    reap the group's orphans (ours as the subreaper)."""
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if proc.poll() is not None and not group_left(pgid):  # the leader reaped first
                break
            time.sleep(_POLL_S)
        _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=max(grace_s, _REAP_S))
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL not delivered
        log.warning("process did not die", pid=proc.pid)
        return
    deadline = time.monotonic() + _REAP_S
    while group_left(pgid) and time.monotonic() < deadline:  # the SIGKILLed orphans' zombies
        time.sleep(_POLL_S)


def group_left(pgid: int) -> bool:
    """Whether a live process of the group is left; reaps those that are our zombies (we
    are the subreaper of the trial's orphans, and a zombie still counts for `killpg`).
    A caller that owns the group's leader as a `Popen` reaps it first (`poll`): reaped
    here, its exit status would be lost."""
    live = False
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid:
            if fields[0] in (b"Z", b"X"):
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(int(name), os.WNOHANG)
            else:
                live = True
    if not os.path.isdir("/proc"):  # no procfs: ask the kernel (zombies count as live)
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return live


def _set_subreaper(on: bool) -> bool:
    """prctl(PR_SET_CHILD_SUBREAPER, on) on Linux; whether it took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):  # no libc prctl: the sweep still kills, PID 1 reaps
        return False


def become_subreaper() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux; once). Whether it is."""
    global _subreaper
    if _subreaper is None:
        _subreaper = _set_subreaper(True)
    return _subreaper


@contextlib.contextmanager
def orphans_not_ours() -> Iterator[None]:
    """While inside, orphans of our descendants go to init (or a subreaper above us), not
    to us. For a process that detaches on purpose (double fork) to outlive us: as our
    adoptee it would be our child again, and killed with our children."""
    ours = _subreaper is True
    if ours:
        _set_subreaper(False)
    try:
        yield
    finally:
        if ours:
            _set_subreaper(True)


def _state(pid: int) -> str | None:
    """The process's state letter (`Z`: a zombie), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def _carrying(token: str) -> list[int]:
    """Live processes whose environment holds `token` (those we may read: our user's)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs (macOS): nothing to find
        return found
    for name in entries:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


_ESCAPED = "killing processes that left the benchmark's process group"


def _sweep(token: str, grace_s: float, why: str = _ESCAPED) -> None:
    """Kill (and reap, when they are ours) the processes that escaped the group."""
    pids = _carrying(token)
    if not pids:
        return
    log.warning(why, pids=pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else _REAP_S)
        while True:
            for pid in pids:
                _reap(pid)
            pids = [p for p in pids if _state(p) not in (None, "Z", "X")]
            if not pids or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        if not pids:
            return


def sweep_escaped(token: str, grace_s: float = DEFAULT_GRACE_S, *, why: str | None = None) -> None:
    """Kill (and reap, when ours) every process still carrying `token` in its environment:
    for a caller that starts the group itself (the preload server forks trials), or one
    that outlived a command whose runner was killed (`why`: the log line then)."""
    _sweep(token, grace_s, why or _ESCAPED)


def new_token() -> str:
    """A fresh run token, for a caller that records it before `run_in_group(token=...)`."""
    return uuid.uuid4().hex


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
    token: str | None = None,
) -> GroupRun:
    """Run `argv` in its own process group for at most `timeout_s` seconds (monotonic).

    `should_stop` is polled while waiting; True ends the command like a timeout does.
    `kill_strays`: kill the group, and what escaped it (module docstring), after a normal
    exit too. `token`: the run token to give it (`new_token()`; a fresh one by default),
    for a caller that records it first so that whoever comes after a crash can
    `sweep_escaped` what is left.
    :raises OSError: the command cannot be started.
    """
    start = time.monotonic()
    deadline = start + max(timeout_s, 0.0)
    token = token or new_token()
    if kill_strays:
        become_subreaper()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env={**env, TOKEN_VAR: token},
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
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
        _sweep(token, grace_s)
        raise
    if timed_out or stopped or kill_strays:
        kill_group(proc, grace_s)
        _sweep(token, grace_s)
    return GroupRun(proc.returncode, timed_out, stopped, time.monotonic() - start)
