"""Runs that never collide, never orphan: the run lock, SIGTERM, Ctrl-C, leftover worktrees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bisector.engine.checkouts import Checkouts
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.store.runlock import RunLock
from bisector.testing import gitutil

from .conftest import ROOT, run_cli

# Writes its pid, optionally double-forks a sleeper out of its process group (setsid) and
# writes that one's pid too, then holds while the `hold` file exists.
# End to end: real repositories, stores and CLI processes (seconds each).
pytestmark = pytest.mark.slow

BENCH = """\
import json, os, pathlib, sys, time
state = pathlib.Path(os.environ["HOLD_DIR"])
if os.environ.get("ESCAPE") == "1" and not (state / "sleeper.pid").exists():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            (state / "sleeper.tmp").write_text(str(os.getpid()))
            os.rename(state / "sleeper.tmp", state / "sleeper.pid")
            time.sleep(300)
        os._exit(0)
    os.wait()
(state / "bench.tmp").write_text(str(os.getpid()))
os.rename(state / "bench.tmp", state / "bench.pid")
deadline = time.monotonic() + 120
while (state / "hold").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"t": 1.0}))
"""


def _repo(tmp_path: Path, escape: bool) -> tuple[Path, Path]:
    state = tmp_path / "state"
    state.mkdir()
    (state / "hold").write_text("")
    repo = gitutil.make_repo(tmp_path / "repo")
    config = (
        "benchmark:\n  command: [python, bench.py]\n  timeout: 200s\n  repeats: {min: 3, max: 5}\n"
        f"  env: {{HOLD_DIR: {str(state)!r}, ESCAPE: {'1' if escape else '0'!r}}}\n"
        "metrics:\n  t: {direction: lower}\n"
    )
    gitutil.commit(
        repo, {"bench.py": BENCH, "bisector.yaml": config, "a.txt": "1\n"}, "first", tag="good"
    )
    gitutil.commit(repo, {"a.txt": "2\n"}, "second", tag="bad")
    return repo, state


def _wait_for(path: Path, proc: subprocess.Popen[bytes], within_s: float = 60) -> int:
    deadline = time.monotonic() + within_s
    while True:  # the file may exist before its pid is written in full
        text = path.read_text() if path.exists() else ""
        if text.strip().isdigit():
            time.sleep(0.05)  # written, perhaps not flushed: read once more
            return int(path.read_text())
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            pytest.fail(
                f"{path.name} never appeared (exit {proc.returncode}): {err.decode()[-2000:]}"
            )
        time.sleep(0.05)


def _gone(pid: int, within_s: float = 10) -> bool:
    """No such process (or a zombie left to a reaper that is not us) within `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """`bisector run` processes started by a test, killed if still running at its end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start_run(repo: Path, procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bisector",
            "run",
            "--good",
            "good",
            "--bad",
            "bad",
            "--repo",
            str(repo),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C as a terminal delivers it: a suite started as a background job (`cmd &`
        # without job control) ignores SIGINT, the run inherits that and, by design,
        # keeps it ignored (`cli._main`), so the SIGINT test waited for a run that never
        # heard it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    procs.append(proc)
    return proc


def test_a_second_run_on_the_same_store_is_refused_naming_the_first(
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """While one run measures, a second `run` on its store exits 2 naming the first's pid."""
    repo, state = _repo(tmp_path, escape=False)
    first = _start_run(repo, started)
    _wait_for(state / "bench.pid", first)
    second = run_cli("run", "--good", "good", "--bad", "bad", "--repo", str(repo), timeout=120)
    assert second.returncode == 2, second.stderr
    assert (
        f"error: another bisector run (pid {first.pid}) is using {repo / '.bisector'}"
        in second.stderr
    )
    assert "hint:" in second.stderr and "Traceback" not in second.stderr
    (state / "hold").unlink()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 3, err.decode()  # the same time at both ends: not reproduced
    assert "another bisector run" not in err.decode()


def test_sigterm_kills_the_benchmark_and_what_it_daemonized_and_cleans_up(
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """SIGTERM mid-trial: the benchmark, its setsid'd sleeper and the worktrees are gone."""
    repo, state = _repo(tmp_path, escape=True)
    proc = _start_run(repo, started)
    bench = _wait_for(state / "bench.pid", proc)
    sleeper = _wait_for(state / "sleeper.pid", proc)  # the benchmark starts it after bench.pid
    assert not _gone(bench, within_s=0.2) and not _gone(sleeper, within_s=0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, err.decode()
    assert "error: terminated" in err.decode() and "Traceback" not in err.decode()
    _assert_cleaned_up(repo, bench, sleeper)


def _assert_cleaned_up(repo: Path, bench: int, sleeper: int) -> None:
    """After a signal: the benchmark and its setsid'd sleeper gone, no worktree left, and
    the lock went with the process (a new run is not refused)."""
    assert _gone(bench) and _gone(sleeper)
    worktrees = repo / ".bisector" / "worktrees"
    assert not worktrees.exists() or list(worktrees.iterdir()) == []
    listed = gitutil.git(repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 1, listed
    with RunLock(repo / ".bisector"):
        pass


def test_sigint_says_interrupted_once_kills_the_benchmark_and_cleans_up(
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """Ctrl-C mid-trial: exit 130 with exactly one `error: interrupted` line, and the same
    clean-up as SIGTERM (the benchmark, its setsid'd sleeper and the worktrees are gone)."""
    repo, state = _repo(tmp_path, escape=True)
    proc = _start_run(repo, started)
    bench = _wait_for(state / "bench.pid", proc)
    sleeper = _wait_for(state / "sleeper.pid", proc)
    assert not _gone(bench, within_s=0.2) and not _gone(sleeper, within_s=0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 130, text
    assert [line for line in text.splitlines() if line.startswith("error:")] == [
        "error: interrupted"
    ], text
    assert "Traceback" not in text
    _assert_cleaned_up(repo, bench, sleeper)


def test_the_run_lock_names_its_holder_and_is_reentrant_in_one_process(tmp_path: Path) -> None:
    """A held lock refuses another process with the holder's pid; the holder may nest it."""
    store = tmp_path / "store"
    probe = (
        "from pathlib import Path; from bisector.store.runlock import RunLock\n"
        f"with RunLock(Path({str(store)!r})): pass\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with RunLock(store), RunLock(store):
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        assert f"another bisector run (pid {os.getpid()}) is using {store}" in done.stderr
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(BisectorError, match="another bisector run"):
        child = subprocess.Popen(
            [sys.executable, "-c", probe.replace("pass", "import time; time.sleep(30)")], env=env
        )
        try:
            deadline = time.monotonic() + 30
            while (store / "run.lock").read_text().strip() != str(
                child.pid
            ) and time.monotonic() < deadline:
                time.sleep(0.05)
            with RunLock(store):
                pass
        finally:
            child.kill()
            child.wait()


def test_worktrees_of_a_killed_run_are_removed_by_the_next_one(tmp_path: Path) -> None:
    """Worktrees and half-made folders a killed run left are gone when the next run ends."""
    repo = gitutil.make_repo(tmp_path / "repo")
    first = gitutil.commit(repo, {"a.txt": "1\n"}, "first")
    second = gitutil.commit(repo, {"a.txt": "2\n"}, "second")
    store = tmp_path / "store"
    with GitRepo(repo) as git:
        killed = Checkouts(git, store)  # never closed: the run was killed
        killed.get(git.resolve(first))
        killed.get(git.resolve(second))
        (store / "worktrees" / "half-made").mkdir()
        (store / "worktrees" / "half-made" / "file").write_text("x")
        with Checkouts(git, store) as resumed:
            assert not (store / "worktrees" / "half-made").exists()
            # An intact leftover is still reused while the run lasts.
            assert resumed.get(git.resolve(first)) == store / "worktrees" / first
    assert list((store / "worktrees").iterdir()) == []
    listed = gitutil.git(repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 1, listed
