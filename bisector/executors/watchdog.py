"""Kills a trial's processes when the Ray worker running it dies (`ray.cancel(force=True)`).

A forced cancel kills the worker process at once, so the worker cannot kill the trial's
process group itself (`plumbing.proc.run_in_group` would, on a normal exit or Ctrl-C).
Before each trial the worker starts this watchdog in a session of its own: it polls the
worker's pid and, once the worker is gone, kills every process whose environment carries
the trial's token (`TRIAL_VAR`, inherited through forks and `setsid`), with its group.
A trial in a container (the docker builder) is not a child of the worker: the watchdog
then also removes the container by its name (`ray_docker`). The worker kills the
watchdog when the trial ends normally.

The watchdog is detached (`spawn`: forked once more, so init is its parent): a Ray worker
that exits on its own terms (its owner, the driver, died) kills its child processes
first, and a watchdog among them would die before it could act.

    python -m bisector.executors.watchdog [--detach] WORKER_PID TOKEN [CONTAINER_NAME]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from bisector.plumbing.proc import orphans_not_ours

TRIAL_VAR = "BISECTOR_RAY_TRIAL"
_POLL_S = 0.1


def carrying(token: str) -> list[int]:
    """Pids of live processes whose environment holds `TRIAL_VAR=token`."""
    needle = f"{TRIAL_VAR}={token}".encode()
    found: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def kill_carrying(token: str) -> int:
    """SIGKILL every process (and its group) carrying `token`; how many were found."""
    pids = carrying(token)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie worker is dead too
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def spawn(worker: int, token: str, container: str | None = None) -> int:
    """Start the watchdog of `worker`'s trial, detached, in a session of its own; its pid."""
    argv = [sys.executable, "-m", __name__, "--detach", str(worker), token]
    # A worker that ran a trial is a subreaper (`plumbing.proc`): the detached watchdog
    # would be adopted by it, and die with its children, unless orphans skip it now.
    with orphans_not_ours():
        done = subprocess.run(
            argv + ([container] if container else []),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            timeout=60,
            check=True,
        )
    return int(done.stdout.split()[0])


def stop(pid: int) -> None:
    """End the watchdog `pid` (the trial ended normally). Alive until the worker dies, and
    the worker calls this, so the pid is still the watchdog's."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--detach":  # `spawn`: the parent says the child's pid and exits
        argv = argv[1:]
        child = os.fork()
        if child:
            print(child, flush=True)
            os._exit(0)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the spawner reads until every writer is gone
        os.close(devnull)
    worker, token = int(argv[0]), argv[1]
    container = argv[2] if len(argv) > 2 else None
    while _alive(worker):
        time.sleep(_POLL_S)
    # A fork racing the first sweep is caught by the next; a container create the daemon
    # was still doing when the worker died, by one of the later ones.
    for _ in range(3 if container is None else 10):
        kill_carrying(token)
        if container is not None:
            from bisector.executors.ray_docker import remove_container  # noqa: PLC0415 (docker SDK)

            remove_container(container)
        time.sleep(_POLL_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
