"""Choosing the executor: config and flags, Ray optional and imported only when chosen."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bisector.config import parse_config
from bisector.errors import ConfigError
from bisector.testing.raycluster import sleep_repo

from .conftest import ROOT, tree_digest

BASE = "benchmark: {command: [python, bench.py]}\nmetrics: {latency_ms: {direction: lower}}\n"


def test_local_is_the_default_and_the_ray_section_parses() -> None:
    """Without `execution:` trials run locally; the ray settings parse into typed values."""
    assert parse_config(BASE).execution.executor == "local"
    cfg = parse_config(
        BASE + "execution:\n  executor: ray\n  workers: 3\n  ray:\n"
        "    address: ray://head.example:10001\n"
        "    resources_per_trial: {num_gpus: 1, num_cpus: 2, accelerator_type:H100: 0.01}\n"
    )
    assert cfg.execution.workers == 3
    assert cfg.execution.ray.address == "ray://head.example:10001"
    assert cfg.execution.ray.resources_per_trial["num_gpus"] == 1


@pytest.mark.parametrize(
    "section",
    [
        "execution: {executor: slurm}",
        "execution: {workers: 0}",
        "execution: {ray: {address: 'http://x'}}",
        "execution: {ray: {resources_per_trial: {num_gpus: -1}}}",
        "execution: {ray: {adress: auto}}",
    ],
)
def test_bad_execution_settings_are_refused(section: str) -> None:
    """A bad executor, worker count, address or resource amount is a config error."""
    with pytest.raises(ConfigError):
        parse_config(BASE + section + "\n")


def _cli(repo: Path, *args: str, pythonpath: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bisector", "run", "--repo", str(repo), "--good", "good"]
        + ["--bad", "bad", "--config", str(repo.parent / "b.yaml"), *args],
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ray_executor_without_ray_is_one_error_with_the_install_hint(tmp_path: Path) -> None:
    """`--executor ray` where Ray cannot be imported: error + hint, exit 2, nothing written."""
    repo = sleep_repo(tmp_path / "repo", 3, 2)
    (tmp_path / "b.yaml").write_text(BASE)
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    before = tree_digest(repo)
    proc = _cli(repo, "--executor", "ray", pythonpath=f"{fake.parent}{os.pathsep}{ROOT}")
    assert proc.returncode == 2, proc.stderr
    assert "error: the ray executor needs Ray" in proc.stderr
    assert "hint: pip install 'bisector[ray]'" in proc.stderr
    assert tree_digest(repo) == before


def test_workers_without_the_ray_executor_is_refused(tmp_path: Path) -> None:
    """`--workers 3` with the local executor says it needs ray, exit 2, nothing written."""
    repo = sleep_repo(tmp_path / "repo", 3, 2)
    (tmp_path / "b.yaml").write_text(BASE)
    before = tree_digest(repo)
    proc = _cli(repo, "--workers", "3", pythonpath=str(ROOT))
    assert proc.returncode == 2
    assert "error: --workers 3 needs the ray executor" in proc.stderr
    assert tree_digest(repo) == before


def test_local_docker_run_without_a_daemon_is_one_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """`--builder docker` on the local executor with no daemon reachable: one error line and
    its hint, exit 2, before anything is written (the ray executor's driver needs none)."""
    repo = sleep_repo(tmp_path / "repo", 3, 2)
    (tmp_path / "b.yaml").write_text(BASE)
    before = tree_digest(repo)
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "run", "--repo", str(repo), "--good", "good"]
        + ["--bad", "bad", "--config", str(tmp_path / "b.yaml"), "--builder", "docker"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": "unix:///nonexistent/d.sock"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: no Docker daemon reachable"), lines
    assert lines[1].startswith("hint: ") and "DOCKER_HOST" in lines[1]
    assert tree_digest(repo) == before


def test_a_local_run_never_imports_ray() -> None:
    """The CLI and the pipeline load without ray (start-up time; ray is an optional extra)."""
    code = (
        "import sys, bisector.cli, bisector.engine.pipeline, bisector.daemon.cycle\n"
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]\n"
    )
    _python(code)


def test_the_watchdog_kills_a_trial_whose_worker_died(tmp_path: Path) -> None:
    """When the worker process dies, every process carrying the trial's token dies too,
    one that left the process group with setsid() included."""
    from bisector.executors.watchdog import TRIAL_VAR

    token = "t" + os.urandom(6).hex()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    escaped = tmp_path / "escaped.pid"
    trial = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys, time\n"
         "if os.fork() == 0:\n"
         "    os.setsid(); open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)\n"
         "time.sleep(60)\n", str(escaped)],
        env={**os.environ, TRIAL_VAR: token},
        start_new_session=True,
    )  # fmt: skip
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "bisector.executors.watchdog", str(worker.pid), token],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    while not escaped.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    pid = int(escaped.read_text())
    assert watchdog.poll() is None  # the worker is alive: the trial is left alone
    worker.kill()
    worker.wait()
    assert watchdog.wait(timeout=20) == 0
    assert trial.wait(timeout=10) != 0
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # reparented to init, which reaps it
    state = (
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if Path(f"/proc/{pid}").exists()
        else "gone"
    )
    assert state in ("gone", "Z")


def test_a_worker_that_is_a_subreaper_does_not_adopt_its_detached_watchdog() -> None:
    """A worker that already ran a trial is a child subreaper (`plumbing.proc`); its
    detached watchdog must still not become its child (Ray kills a worker's children as
    the worker exits), and the worker stays a subreaper afterwards."""
    script = (
        "import ctypes, os, sys\n"
        "from bisector.plumbing.proc import become_subreaper\n"
        "from bisector.executors.watchdog import spawn, stop\n"
        "assert become_subreaper()\n"
        "pid = spawn(os.getpid(), 'tok' + os.urandom(4).hex())\n"
        "ppid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
        "flag = ctypes.c_int(0)\n"
        "ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER\n"
        "stop(pid)\n"
        "print(ppid != os.getpid(), flag.value)\n"
    )
    assert _python(script).split() == ["True", "1"]


def _python(code: str) -> str:
    """What `python -c code` (this checkout's bisector importable) prints; it must exit 0."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
