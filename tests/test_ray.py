"""The ray executor against a real Ray head on 127.0.0.1: multisection, lost workers, resume,
fingerprints kept apart, cancelled work leaving no process.

One head for the whole session (`ray start` is slow on two cores); every run is the CLI in
a fresh process, as a user would run it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bisector.testing.raycluster import RayHead, sleep_repo, wheel_repo

from .conftest import ROOT, run_cli

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

N, CULPRIT = 12, 8


def _config(
    path: Path, head: RayHead, workers: int, *, node_type: str | None = None, sleep: float = 0.2
) -> Path:
    ray: dict[str, object] = {
        "address": head.address,
        "resources_per_trial": {"num_cpus": 1, "num_gpus": 0.5},
        "cache_dir": str(path.parent / "cache"),
    }
    if node_type:
        ray["node_type"] = node_type
    cfg = {
        "benchmark": {
            "command": ["python", "bench.py"],
            "timeout": "120s",
            "repeats": {"min": 3, "max": 8},
            "env": {"SLEEP_S": str(sleep), "TRIAL_LOG": str(path.parent / "trials.log")},
        },
        "metrics": {"latency_ms": {"direction": "lower"}},
        "execution": {"executor": "ray", "workers": workers, "ray": ray},
    }
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def _bisect(repo: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "run", "--repo", str(repo), "--config", str(config), "--good", "good", "--bad", "bad",
        "--json", *extra, timeout=400,
    )  # fmt: skip


def _culprit_index(proc: subprocess.CompletedProcess[str], repo: Path) -> int:
    assert proc.returncode == 0, proc.stderr[-3000:]
    sha = json.loads(proc.stdout)["culprit"]["commit"]
    out = subprocess.run(
        ["git", "-C", str(repo), "show", f"{sha}:commit.txt"], capture_output=True, text=True
    )
    return int(out.stdout)


def _trials(repo: Path) -> list[tuple[str, str, dict[str, object]]]:
    """(commit sha, bench key, meta) of every journaled trial."""
    with sqlite3.connect(repo / ".bisector" / "journal.sqlite") as db:
        rows = db.execute("SELECT commit_sha, bench_key, meta FROM trials ORDER BY id").fetchall()
    return [(sha, key, json.loads(meta)) for sha, key, meta in rows]


def _executions(log: Path) -> list[tuple[int, int]]:
    """(commit index, pid) of every benchmark process started, in order."""
    if not log.exists():
        return []
    return [(int(a), int(b)) for a, b in (line.split() for line in log.read_text().splitlines())]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


KILL_HOOK = """\
import os, signal, time
marker = pathlib.Path(os.environ["KILL_MARKER"])
if pathlib.Path("commit.txt").read_text().strip() == "0" and not marker.exists():
    marker.write_text(str(os.getpid()))
    parent = os.getppid()
    if pathlib.Path(f"/proc/{parent}/cmdline").read_bytes().startswith(b"ray::"):
        os.kill(parent, signal.SIGKILL)  # the worker dies mid-trial
    time.sleep(60)  # the worker's watchdog kills us
"""


def test_a_worker_killed_mid_trial_is_retried_and_its_trial_process_killed(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """A worker killed mid-trial costs that trial only: it runs again, the run finds the culprit."""
    repo = sleep_repo(tmp_path / "repo", N, CULPRIT, extra={"hook.py": KILL_HOOK})
    config = _config(tmp_path / "b.yaml", ray_head, 3)
    marker = tmp_path / "killed"
    cfg = json.loads(config.read_text())
    cfg["benchmark"]["env"]["KILL_MARKER"] = str(marker)
    config.write_text(json.dumps(cfg))
    proc = _bisect(repo, config)
    assert marker.exists(), "the hook did not run"
    assert _culprit_index(proc, repo) == CULPRIT
    victim = int(marker.read_text())
    assert not _alive(victim)
    # The lost trial is not journaled: every good-endpoint trial is a real measurement.
    good = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "good"], capture_output=True, text=True
    ).stdout.strip()
    runs_of_good = [i for i, _pid in _executions(tmp_path / "trials.log") if i == 0]
    journaled = [m for sha, _k, m in _trials(repo) if sha == good]
    assert len(runs_of_good) >= len(journaled) + 1
    assert all(m.get("_reason") is None for m in journaled)


def test_a_killed_driver_resumes_without_repeating_trials(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """Killing the driver mid-run and running again reuses every journaled trial."""
    repo = sleep_repo(tmp_path / "repo", N, CULPRIT)
    config = _config(tmp_path / "b.yaml", ray_head, 3, sleep=0.4)
    argv = [sys.executable, "-m", "bisector", "run", "--repo", str(repo), "--config", str(config)]
    argv += ["--good", "good", "--bad", "bad"]
    driver = subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = repo / ".bisector" / "journal.sqlite"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None:
        if journal.exists() and len(_trials(repo)) >= 10:
            break
        time.sleep(0.2)
    assert driver.poll() is None, "the run ended before it could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = _trials(repo)
    time.sleep(1.0)  # Ray notices its owner died and ends the driver's tasks
    started = len(_executions(tmp_path / "trials.log"))
    proc = _bisect(repo, config)
    assert "already journaled" in proc.stderr
    assert _culprit_index(proc, repo) == CULPRIT
    after = _trials(repo)
    assert after[: len(before)] == before  # nothing lost or rewritten
    # Every trial of the first run counts in the second, which measured less than it used.
    assert f"({len(before)} trials already journaled)" in proc.stderr
    rerun = _executions(tmp_path / "trials.log")[started:]
    assert 0 < len(rerun) < len(after)


def test_k_2_and_3_find_the_culprit_and_two_node_types_are_kept_apart(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """K = 2 on one node type and K = 3 on another both name the culprit; neither reuses or
    compares the other's trials; every trial records its node and fingerprint."""
    repo = sleep_repo(tmp_path / "repo", N, CULPRIT)
    first = _bisect(repo, _config(tmp_path / "a.yaml", ray_head, 2, node_type="type_a"))
    assert _culprit_index(first, repo) == CULPRIT
    assert "+fp-" in json.loads(first.stdout)["bench_key"]  # the report reads these trials
    trials_a = _trials(repo)
    log = tmp_path / "trials.log"
    before = len(_executions(log))
    second = _bisect(repo, _config(tmp_path / "b.yaml", ray_head, 3, node_type="type_b"))
    assert _culprit_index(second, repo) == CULPRIT
    trials_b = _trials(repo)[len(trials_a) :]
    for _sha, _key, meta in trials_a + trials_b:
        fingerprint = meta["_fingerprint"]
        assert isinstance(fingerprint, dict) and fingerprint["cpu"] and meta["_node"]
    types = {m["_fingerprint"]["node_type"] for _s, _k, m in trials_a}  # type: ignore[index]
    assert types == {"type_a"}
    assert {m["_fingerprint"]["node_type"] for _s, _k, m in trials_b} == {"type_b"}  # type: ignore[index]
    assert {k for _s, k, _m in trials_a}.isdisjoint({k for _s, k, _m in trials_b})
    rerun = {i for i, _pid in _executions(log)[before:]}
    assert {0, N - 1} <= rerun  # type_b measured its own endpoints, reused nothing of type_a
    # No benchmark process outlives a run, cancelled or not.
    assert not [pid for _i, pid in _executions(log) if _alive(pid)]


SLOW_HOOK = """\
import os, time
if int(pathlib.Path("commit.txt").read_text()) not in (0, %d) and int(pathlib.Path("commit.txt").read_text()) > %d:
    time.sleep(40)  # points above the culprit hang: they must be cancelled, not waited for
"""


def test_moot_points_are_cancelled_and_leave_no_process(ray_head: RayHead, tmp_path: Path) -> None:
    """Points made moot by a verdict are cancelled at once; none of their processes survives."""
    culprit = 4
    hook = SLOW_HOOK % (N - 1, culprit + 2)
    repo = sleep_repo(tmp_path / "repo", N, culprit, extra={"hook.py": hook})
    t0 = time.monotonic()
    proc = _bisect(repo, _config(tmp_path / "b.yaml", ray_head, 3))
    wall = time.monotonic() - t0
    assert _culprit_index(proc, repo) == culprit
    hung = [(i, pid) for i, pid in _executions(tmp_path / "trials.log") if i > culprit + 2]
    hung = [(i, pid) for i, pid in hung if i != N - 1]
    assert hung, "no point above the culprit was measured speculatively"
    time.sleep(0.5)  # the watchdogs poll every 0.1 s
    assert not [pid for _i, pid in hung if _alive(pid)]
    assert wall < 40  # the hanging trials were not waited for


def test_venv_builder_on_workers_builds_each_key_once_per_node(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """With the venv builder, K = 2 workers build each pinned environment once on the node
    (under execution.ray.cache_dir) and name the commit that upgraded the pin."""
    repo = wheel_repo(tmp_path / "repo", tmp_path / "wheels", N, CULPRIT)
    config = _config(tmp_path / "b.yaml", ray_head, 2)
    cfg = json.loads(config.read_text())
    cfg["environment"] = {
        "builder": "venv",
        "requirements": ["requirements.txt"],
        "find_links": [str(tmp_path / "wheels")],
        "no_index": True,
    }
    config.write_text(json.dumps(cfg))
    proc = _bisect(repo, config, "--builder", "venv", "--executor", "ray", "--workers", "2")
    assert _culprit_index(proc, repo) == CULPRIT
    trials = _trials(repo)
    assert len({meta["_node"] for _s, _k, meta in trials}) == 1
    # Two pins, two environments on the one node, each reused by every later trial there.
    envs = tmp_path / "cache" / "store" / "envs"
    built = [p for p in envs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(built) == 2, sorted(p.name for p in envs.iterdir())
    assert len(trials) > len(built)


TYPE_B_SLOWER = """\
if os.environ.get("BISECTOR_NODE_TYPE") == "type_b":
    level *= 1.3  # the same commit measures slower on type_b, as much as the regression
"""


def test_mixed_node_types_judge_each_candidate_against_endpoints_of_its_own_type(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """Over two node types (type_b 1.3x slower) each candidate is measured on one type and
    judged against endpoint trials of that type, the endpoints are measured on both, and the
    culprit is right (compared across types, a good commit on type_b would look bad)."""
    repo = sleep_repo(tmp_path / "repo", N, CULPRIT, extra={"hook.py": TYPE_B_SLOWER})
    config = _config(tmp_path / "b.yaml", ray_head, 3)
    cfg = json.loads(config.read_text())
    cfg["execution"]["ray"]["node_types"] = ["type_a", "type_b"]
    config.write_text(json.dumps(cfg))
    proc = _bisect(repo, config)
    assert _culprit_index(proc, repo) == CULPRIT
    assert "failed verification" not in proc.stderr, proc.stderr[-3000:]
    index = {
        sha: int(subprocess.run(
            ["git", "-C", str(repo), "show", f"{sha}:commit.txt"], capture_output=True, text=True
        ).stdout)
        for sha in {s for s, _k, _m in _trials(repo)}
    }  # fmt: skip
    types: dict[int, set[str]] = {}
    keys: dict[str, set[str]] = {}
    for sha, key, meta in _trials(repo):
        node_type = meta["_fingerprint"]["node_type"]  # type: ignore[index]
        types.setdefault(index[sha], set()).add(node_type)
        keys.setdefault(node_type, set()).add(key)
    assert all(len(k) == 1 for k in keys.values()) and len(keys) == 2  # one fingerprint a type
    assert types[0] == types[N - 1] == {"type_a", "type_b"}
    # Every candidate on one type (the culprit's parent is also measured, as the reference of
    # its verification, on the culprit's type); both types measured candidates.
    candidates = {i: t for i, t in types.items() if i not in (0, N - 1, CULPRIT - 1)}
    assert all(len(t) == 1 for t in candidates.values()), types
    assert set().union(*candidates.values()) == {"type_a", "type_b"}, types
    assert types[CULPRIT] <= types.get(CULPRIT - 1, set())
    # Every verdict is the truth (compared across types, type_b's good commits look bad).
    doc = json.loads(proc.stdout)
    for step in doc["steps"]:
        i = next(i for sha, i in index.items() if sha == step["commit"])
        if step["verdict"] in ("good", "bad"):
            assert step["verdict"] == ("bad" if i >= CULPRIT else "good"), step
        # Each verdict names the type it was judged on: the endpoints' reproduction on the
        # first, a candidate on its own (the one its trials ran on).
        on = {"type_a"} if step["phase"] == "reproduce" else types[i]
        assert step["node_type"] in on, (step, types)
    _reports_show_every_type(repo, doc, keys)


def _reports_show_every_type(repo: Path, doc: dict[str, Any], keys: dict[str, set[str]]) -> None:
    """The run's reports count and plot the trials of both node types, each marked with it."""
    with sqlite3.connect(repo / ".bisector" / "journal.sqlite") as db:
        rows = db.execute("SELECT bench_key FROM trials WHERE run_id=?", (doc["run_id"],))
        journaled = [key for (key,) in rows]
    kinds = doc["node_types"]
    assert [k["node_type"] for k in kinds] == ["type_a", "type_b"]
    assert {k["node_type"]: {k["bench_key"]} for k in kinds} == keys
    for kind in kinds:
        assert kind["trials"] == journaled.count(kind["bench_key"]) > 0, kinds
        assert kind["fingerprint"]["node_type"] == kind["node_type"] and kind["fingerprint"]["cpu"]
    assert sum(k["trials"] for k in kinds) == len(journaled) == doc["measurements"]
    report = Path(doc["report"])
    stored = json.loads(report.with_name("report.json").read_text())
    assert stored["node_types"] == kinds and stored["steps"] == doc["steps"]
    markdown = report.with_name("report.md").read_text()
    assert "## Node types" in markdown and "| node type |" in markdown
    html = report.read_text()
    assert 'id="node-types"' in html
    plot = html[html.index('id="range-plot"') :]
    plot = plot[: plot.index("</svg>")]
    # One mark per trial (all ok here) in its type's group; each type has its own median.
    groups = re.findall(r'<g id="trials-(\d+)-(\d+)">(.*?)</g>\s*</g>', plot, flags=re.S)
    assert sum(g.count("<use ") for _i, _k, g in groups) == len(journaled)
    assert f'data-trials="{len(journaled)}"' in html
    assert {k for _i, k, _g in groups} == {"0", "1"} and not re.search(r'id="trials-\d+"', plot)
    assert 'id="median-0-0"' in plot and 'id="median-0-1"' in plot  # the good end, per type
    assert "trials on type_a" in plot and "trials on type_b" in plot
