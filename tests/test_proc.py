"""Commands in their own process group: timeouts, stops and strays kill the whole group."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bisector.plumbing.proc import GroupRun, run_in_group

# The child starts a grandchild that ignores SIGTERM (so only the SIGKILL after the grace
# gets it), writes its pid, then waits a minute.
_SPAWNER = """
import pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
time.sleep(float(sys.argv[2]))
"""


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting for its (new) parent to reap it."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _gone(pid)


def _spawn(tmp_path: Path, child_sleep_s: float, **kw: Any) -> tuple[GroupRun, int, float]:
    pidfile = tmp_path / "grandchild.pid"
    start = time.monotonic()
    with (tmp_path / "out").open("wb") as out:
        done = run_in_group(
            [sys.executable, "-c", _SPAWNER, str(pidfile), str(child_sleep_s)],
            cwd=tmp_path,
            env=os.environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            **kw,
        )
    return done, int(pidfile.read_text()), time.monotonic() - start


def test_timeout_kills_the_child_and_its_grandchild(tmp_path: Path) -> None:
    """After the timeout and the grace the group is gone, the one that ignored SIGTERM too."""
    done, grandchild, took = _spawn(tmp_path, 60, timeout_s=2.0, grace_s=0.3)
    assert done.timed_out and not done.stopped
    assert done.returncode is not None and done.returncode < 0
    assert took < 8
    assert _wait_gone(grandchild)


def test_a_stray_grandchild_is_killed_after_a_normal_exit_unless_kept(tmp_path: Path) -> None:
    """The group is cleaned up after exit 0; kill_strays=False leaves it (the health check's way)."""
    done, grandchild, _ = _spawn(tmp_path, 0, timeout_s=20, grace_s=0.3)
    assert done.returncode == 0 and not done.timed_out
    assert _wait_gone(grandchild)
    (tmp_path / "grandchild.pid").unlink()
    done, grandchild, _ = _spawn(tmp_path, 0, timeout_s=20, grace_s=0.3, kill_strays=False)
    try:
        assert done.returncode == 0 and not _gone(grandchild)
    finally:
        os.kill(grandchild, 9)


def test_should_stop_ends_the_command_like_a_timeout(tmp_path: Path) -> None:
    """A stop request is seen while waiting and kills the group without waiting for the timeout."""
    asked = time.monotonic() + 1.5
    done, grandchild, took = _spawn(
        tmp_path, 60, timeout_s=30, grace_s=0.0, should_stop=lambda: time.monotonic() > asked
    )
    assert done.stopped and not done.timed_out and took < 5
    assert _wait_gone(grandchild)


def test_a_missing_program_is_an_oserror(tmp_path: Path) -> None:
    """Nothing is started and the caller learns why."""
    with pytest.raises(FileNotFoundError):
        run_in_group(
            ["/nonexistent/prog"],
            cwd=tmp_path,
            env=os.environ,
            timeout_s=1,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


# Double-forks a sleeper into a session of its own (out of the process group), writes its
# pid and exits at once, as a benchmark that daemonizes a server does.
_DAEMONIZER = """
import os, pathlib, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        pathlib.Path(sys.argv[1] + ".tmp").write_text(str(os.getpid()))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        time.sleep(120)
    os._exit(0)
os.wait()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
"""


def test_a_process_that_left_the_group_with_setsid_is_killed_and_reaped(tmp_path: Path) -> None:
    """A double-forked `setsid` sleeper is killed after the command and reaped (no zombie left)."""
    pidfile = tmp_path / "sleeper.pid"
    done = run_in_group(
        [sys.executable, "-c", _DAEMONIZER, str(pidfile)],
        cwd=tmp_path,
        env=os.environ,
        timeout_s=20,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        grace_s=0.3,
    )
    sleeper = int(pidfile.read_text())
    assert done.returncode == 0
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{sleeper}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not Path(f"/proc/{sleeper}").exists(), Path(f"/proc/{sleeper}/status").read_text()[
            :200
        ]
    finally:
        if not _gone(sleeper):
            os.kill(sleeper, 9)


# Forks a child that stays in the group (stdout still open) and exits at once, as a
# benchmark that leaves a worker behind does.
_FORKER = """
import os, pathlib, sys, time
if os.fork() == 0:
    time.sleep(60)
    os._exit(0)
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
"""


def test_a_child_left_in_the_group_is_reaped_without_waiting_for_the_grace(
    tmp_path: Path,
) -> None:
    """The child, orphaned to us (the subreaper), dies of the SIGTERM at once: the group is
    done then. Unreaped, its zombie still counted for `killpg`, so every such trial waited
    the whole grace, and one zombie per trial stayed with bisector (a daemon's grow)."""
    pidfile = tmp_path / "parent.pid"
    with (tmp_path / "out").open("wb") as out:
        done = run_in_group(
            [sys.executable, "-c", _FORKER, str(pidfile)],
            cwd=tmp_path,
            env=os.environ,
            timeout_s=20,
            stdout=out,
            stderr=subprocess.STDOUT,
            grace_s=10,
        )
    assert done.returncode == 0 and not done.timed_out
    assert done.duration_s < 5, done
    pgid = int(pidfile.read_text())
    zombies = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit()
        and (stat := Path(f"/proc/{pid}/stat")).exists()
        and _group_of(stat) == pgid
    ]
    assert zombies == []


def _group_of(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError):
        return None
