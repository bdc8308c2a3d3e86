"""The daemon with the ray executor: `execution:` of the daemon's bisector.yaml sends its
cycles' trials to the Ray cluster, and a cycle leaves no driver connection behind.

The cycles run as the daemon's scheduler runs them: `run_cycle` in a worker thread of one
long-lived process (a fresh process here, so this session's pytest never connects to Ray).
"""

from __future__ import annotations

import json
import os
import select
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bisector.store.daemon_state import DaemonState
from bisector.testing import gitutil
from bisector.testing.raycluster import RayHead, sleep_repo

from .conftest import ROOT
from .daemon_support import webhook

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

N, CULPRIT = 10, 6

# Two cycles in one process, each in a thread of its own as APScheduler runs them; after
# each: the outcome, whether Ray is still initialised here, this process's children, and
# whether stdout is back (the ray measurer sends Ray's prints to stderr while connected).
DAEMON = """\
import json, os, sys, threading
import ray
from bisector.daemon.cycle import run_cycle

def children():
    mine = str(os.getpid())
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[1] == mine and stat[0] != "Z":
            found.append(pid)
    return found

stdout = sys.stdout
for n in range(2):
    if n:
        sys.stdin.readline()  # the test moved the branch
    box = {}
    worker = threading.Thread(target=lambda: box.update(run_cycle(sys.argv[1], sys.argv[2])))
    worker.start()
    worker.join()
    state = {"ray": ray.is_initialized(), "children": children(), "stdout": sys.stdout is stdout}
    print(json.dumps({"cycle": box, "pid": os.getpid(), **state}), file=stdout, flush=True)
"""

DRIVERS = """\
import json, sys
from ray._raylet import GcsClient
jobs = GcsClient(address=sys.argv[1]).get_all_job_info()
print(json.dumps([[j.driver_pid, j.is_dead] for j in jobs.values()]))
"""


def _drivers(address: str) -> list[tuple[int, bool]]:
    """(driver pid, ended) of every job the cluster has seen."""
    out = subprocess.run(
        [sys.executable, "-c", DRIVERS, address], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [(int(pid), bool(dead)) for pid, dead in json.loads(out.stdout)]


def _report(daemon: subprocess.Popen[str], timeout: float = 400) -> dict[str, Any]:
    """The next line the daemon script prints after a cycle ({} if it died or hung)."""
    assert daemon.stdout is not None
    ready, _, _ = select.select([daemon.stdout], [], [], timeout)
    line = daemon.stdout.readline() if ready else ""
    return dict(json.loads(line)) if line.strip() else {}


def _config(path: Path, head: RayHead, hook_url: str) -> Path:
    cfg = {
        "benchmark": {
            "command": ["python", "bench.py"],
            "timeout": "120s",
            "repeats": {"min": 3, "max": 8},
            "env": {"SLEEP_S": "0.2"},
        },
        "metrics": {"latency_ms": {"direction": "lower"}},
        "daemon": {
            "schedule": "0 2 * * *",
            "metrics_port": 0,
            "alerts": [{"webhook": hook_url, "retries": 0}],
        },
        "execution": {
            "executor": "ray",
            "workers": 2,
            "ray": {
                "address": head.address,
                "resources_per_trial": {"num_cpus": 1, "num_gpus": 0.5},
                "cache_dir": str(path.parent / "cache"),
            },
        },
    }
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def test_daemon_cycles_bisect_on_ray_and_leave_no_driver_behind(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """A daemon cycle with `execution.executor: ray` names the culprit from trials run on the
    cluster (each with its node and fingerprint), alerts and journals it as a local cycle
    does, and disconnects: no Ray connection, process or live driver left before the next
    cycle, which connects again."""
    repo = sleep_repo(tmp_path / "repo", N, CULPRIT)  # tags good (0) and bad (N - 1): releases
    sha = {
        int(gitutil.git(repo, "show", f"{c}:commit.txt").strip()): c
        for c in gitutil.git(repo, "rev-list", "HEAD").split()
    }
    with webhook() as hook:
        config = _config(tmp_path / "bisector.yaml", ray_head, hook.url)
        log = tmp_path / "daemon.log"  # a file: a full stderr pipe would block the daemon
        with log.open("w") as err:
            daemon = subprocess.Popen(
                [sys.executable, "-c", DAEMON, str(repo), str(config)],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert daemon.stdin is not None
        try:
            first = _report(daemon)
            assert first.get("cycle", {}).get("outcome") == "regression", log.read_text()[-3000:]
            drivers = _drivers(ray_head.address)
            # A commit lands on the branch: the next cycle bisects a new range, on Ray again.
            gitutil.commit(repo, {"commit.txt": f"{N}\n"}, f"change {N}")
            daemon.stdin.write("go\n")
            daemon.stdin.flush()
            second = _report(daemon)
            daemon.stdin.close()
            assert daemon.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        assert second.get("cycle", {}).get("outcome") == "regression", log.read_text()[-3000:]
        # The culprit and the alert, as for a local cycle (the second range's culprit is the
        # same commit: not alerted again).
        assert first["cycle"]["culprit"] == second["cycle"]["culprit"] == sha[CULPRIT]
        assert len(hook.bodies) == 1 and hook.bodies[0]["culprit"] == sha[CULPRIT]
        assert Path(hook.bodies[0]["report"]).is_file()
    # Between the cycles: not connected, no process of Ray's (or a trial's) under the daemon,
    # and the cluster saw this process's driver end.
    for after in (first, second):
        assert after["ray"] is False and after["children"] == [] and after["stdout"], after
    mine = [dead for pid, dead in drivers if pid == first["pid"]]
    assert mine and all(mine), drivers
    # Every trial of the cycles' runs ran on the cluster: node and fingerprint journaled.
    with sqlite3.connect(repo / ".bisector" / "journal.sqlite") as db:
        rows = db.execute("SELECT run_id, bench_key, meta FROM trials").fetchall()
        runs = dict(db.execute("SELECT id, status FROM runs").fetchall())
    assert set(runs.values()) == {"found"} and len(runs) == 2
    assert {run for run, _k, _m in rows} == set(runs)  # the second cycle measured on Ray too
    for _run, key, meta in rows:
        facts = json.loads(meta)
        assert "+fp-" in key and facts["_node"] and facts["_fingerprint"]["cpu"], facts
    with DaemonState(repo / ".bisector") as journal:
        assert [c.outcome for c in journal.cycles()] == ["regression", "regression"]
        assert {r.phase for r in journal.ranges()} == {"done"}
        last_good = journal.last_good()
        assert last_good is not None and last_good.sha == sha[0]
