"""The daemon: cycles on generated repositories, alerts, pause, locks, resume, rollback."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from bisector.daemon import metrics
from bisector.daemon.cycle import execute
from bisector.gitrepo import GitRepo
from bisector.releases import initial_last_good, label_of
from bisector.store.control import ControlStore
from bisector.store.daemon_state import DaemonState
from bisector.testing import gitutil
from bisector.testing.sample import SampleRepo
from tests.conftest import ROOT, run_cli, tree_digest
from tests.daemon_support import hide_release, publish_release, released_repo, webhook


@pytest.mark.slow
def test_new_bad_release_is_bisected_and_alerted_once(tmp_path: Path) -> None:
    """A new regressed release is snapshotted, bisected to the planted culprit and alerted exactly once."""
    with webhook() as hook:
        repo = released_repo(tmp_path / "repo", webhook_url=hook.url)
        bad_sha = hide_release(repo)

        first = execute(repo.path, None)
        assert first.outcome == "fine", first
        assert first.last_good == repo.tags["v2.3.0"] and first.head == repo.tags["v2.3.1"]
        assert hook.bodies == []

        publish_release(repo, bad_sha)
        second = execute(repo.path, None)
        assert second.outcome == "regression", second
        assert second.new_tags == ("v2.4.0",)
        assert second.last_good == repo.tags["v2.3.1"]
        assert second.detail["culprit"] == repo.culprit
        assert len(hook.bodies) == 1
        body = hook.bodies[0]
        assert repo.culprit[:10] in body["text"] and body["culprit"] == repo.culprit
        assert "SECRET" not in json.dumps(body)
        report = Path(body["report"])
        assert report.name == "report.html" and report.is_file()

        third = execute(repo.path, None)
        assert third.outcome == "already_handled"
        assert len(hook.bodies) == 1
    exposition = generate_latest(metrics.registry(repo.path / ".bisector")).decode()
    assert 'bisector_daemon_last_cycle_outcome{outcome="already_handled"} 1.0' in exposition
    assert 'bisector_daemon_last_cycle_outcome{outcome="regression"} 0.0' in exposition
    assert "bisector_daemon_regressions_found_total 1.0" in exposition
    assert "bisector_daemon_culprits_found_total 1.0" in exposition
    with DaemonState(repo.path / ".bisector") as state:
        assert [c.outcome for c in state.cycles()] == ["already_handled", "regression", "fine"]
        good = state.last_good()
        assert good is not None and good.sha == repo.tags["v2.3.1"]


def test_paused_daemon_acts_on_nothing(tmp_path: Path) -> None:
    """While paused a cycle measures, bisects, snapshots nothing, and alerts nothing when no
    alert is owed."""
    with webhook() as hook:
        repo = released_repo(tmp_path / "repo", webhook_url=hook.url)
        with ControlStore(repo.path / ".bisector" / "journal.sqlite") as control:
            control.pause("maintenance", by="user")
        result = execute(repo.path, None)
        assert result.outcome == "paused"
        assert hook.bodies == []
    db = sqlite3.connect(repo.path / ".bisector" / "journal.sqlite")
    assert db.execute("SELECT COUNT(*) FROM daemon_ranges").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM daemon_tags").fetchone()[0] == 0
    runs = db.execute("SELECT name FROM sqlite_master WHERE name='runs'").fetchone()
    assert runs is None or db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert not (repo.path / ".bisector" / "snapshots").exists() or not any(
        (repo.path / ".bisector" / "snapshots").iterdir()
    )


def _popen_daemon(repo: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "bisector", "daemon", "--repo", str(repo), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_second_daemon_exits_with_clear_error_and_sigterm_stops_the_first(tmp_path: Path) -> None:
    """A second daemon on the same store exits 2 with one `error:` line; SIGTERM stops the first cleanly."""
    repo = released_repo(tmp_path / "repo", webhook_url=None, schedule="0 2 1 1 *")
    first = _popen_daemon(repo.path)
    try:
        lock = repo.path / ".bisector" / "daemon.lock"
        _wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid))
        second = run_cli("daemon", "--once", "--repo", str(repo.path))
        assert second.returncode == 2, second.stderr
        assert second.stderr.startswith("error: the bisector daemon is already running (pid ")
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        assert '"daemon.stopped"' in err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.slow
def test_cycle_killed_midway_resumes_on_next_start(tmp_path: Path) -> None:
    """A cycle SIGKILLed during the bisection is resumed by the next start, reusing its journaled trials."""
    with webhook() as hook:
        repo = released_repo(tmp_path / "repo", webhook_url=hook.url)
        journal = repo.path / ".bisector" / "journal.sqlite"

        def trials() -> int:
            if not journal.exists():
                return 0
            try:
                db = sqlite3.connect(journal, timeout=5)
                return int(db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

        proc = _popen_daemon(repo.path, "--once")
        try:
            _wait_for(lambda: trials() >= 3)
        finally:
            proc.kill()
            proc.wait()
        killed_at = trials()
        db = sqlite3.connect(journal)
        ((run_id, status),) = db.execute("SELECT id, status FROM runs").fetchall()
        assert status == "running"
        assert db.execute("SELECT status FROM daemon_cycles").fetchall() == [("running",)]

        again = run_cli("daemon", "--once", "--repo", str(repo.path))
        assert again.returncode == 0, again.stderr
        assert '"daemon.cycle.resuming"' in again.stderr
        # the sample pins packages this environment lacks: the run's warning reaches the log
        assert '"daemon.warning"' in again.stderr and "--builder venv" in again.stderr
        rows = db.execute("SELECT id, status FROM runs").fetchall()
        assert rows == [(run_id, "found")]
        assert trials() > killed_at
        assert [r[0] for r in db.execute("SELECT status FROM daemon_cycles ORDER BY id")] == [
            "interrupted",
            "finished",
        ]
        assert len(hook.bodies) == 1 and hook.bodies[0]["culprit"] == repo.culprit


@pytest.mark.slow
def test_once_with_rollback_policy_rolls_configs_back(tmp_path: Path) -> None:
    """`bisector daemon --once` with policy rollback puts the last good release's configs live; again changes nothing."""
    repo = released_repo(tmp_path / "repo", webhook_url=None, policy="rollback")
    live = tmp_path / "repo-live"
    done = run_cli("daemon", "--once", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr
    assert (live / "serving.yaml").read_bytes() == subprocess.run(
        ["git", "show", "v2.3.1:configs/serving.yaml"],
        cwd=repo.path,
        capture_output=True,
        check=True,
    ).stdout
    before = tree_digest(live)
    again = run_cli("daemon", "--once", "--repo", str(repo.path))
    assert again.returncode == 0, again.stderr
    assert '"already_handled"' in again.stderr
    assert tree_digest(live) == before
    status = json.loads(run_cli("status", "--json", "--repo", str(repo.path)).stdout)
    assert status["last_rollback"]["status"] == "applied"
    assert status["daemon"]["last_cycle"]["outcome"] == "already_handled"
    assert status["daemon"]["ranges"][0]["culprit"] == repo.culprit


def test_status_says_in_words_that_no_set_was_written_yet() -> None:
    """Before the first rollback the target holds no set of bisector's: said, not `None`."""
    from bisector.daemon.status import status_lines

    target = {"path": "/srv/live", "kind": "folder", "drift": [], "rollback_running": False}
    daemon = {"running": False, "last_good": None, "cycles": [], "ranges": []}
    doc = {"recovered": None, "paused": False, "last_rollback": None, "daemon": daemon}
    lines = status_lines(doc | {"target": target | {"live": None}})
    assert "target: /srv/live (folder), live set: none written by bisector yet" in lines
    lines = status_lines(doc | {"target": target | {"live": "v2.3.1"}})
    assert "target: /srv/live (folder), live set: v2.3.1" in lines


def _odd_tags(repo: SampleRepo) -> str:
    """Tags git allows beside the releases: two that bisector takes (`v1.0,x`, `ünï`) and
    three it refuses, as a fetch could bring them (`-rc` and `v2.2<U+202E>`, a bidi
    override, on the head, `-old` on v2.3.0). Returns the head."""
    head = gitutil.git(repo.path, "rev-parse", "HEAD")
    gitutil.git(repo.path, "tag", "v1.0,x")
    gitutil.git(repo.path, "tag", "ünï")
    gitutil.git(repo.path, "tag", "v2.2\u202e")
    gitutil.git(repo.path, "update-ref", "refs/tags/-rc", "HEAD")
    gitutil.git(repo.path, "update-ref", "refs/tags/-old", f"{repo.tags['v2.3.0']}")
    return head


def test_a_tag_bisector_refuses_is_skipped_and_the_cycle_completes(tmp_path: Path) -> None:
    """`daemon --once` with a tag named `-rc` in the repository: one warning naming it, the
    other new tags (`v1.0,x`, `ünï` among them) are snapshotted, exit 0."""
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    hide_release(repo)
    head = _odd_tags(repo)
    with DaemonState(repo.path / ".bisector") as state:
        state.set_last_good(head, "v2.3.1")  # nothing to measure: the cycle is the tags
    done = run_cli("daemon", "--once", "--repo", str(repo.path), timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    skipped = [e for e in events if e["event"] == "daemon.tag_skipped"]
    assert sorted(e["tag"] for e in skipped) == ["-old", "-rc", "v2.2\u202e"], done.stderr
    assert "\u202e" not in done.stderr  # JSON lines write it out
    assert [e["outcome"] for e in events if e["event"] == "daemon.cycle.end"] == ["up_to_date"]
    assert not [e for e in events if e["event"] == "daemon.cycle.error"], done.stderr
    with DaemonState(repo.path / ".bisector") as state:
        assert set(state.snapshotted_tags()) == {"v2.3.0", "v2.3.1", "v1.0,x", "ünï"}


def test_a_refused_tag_is_never_the_last_good_nor_a_label(tmp_path: Path) -> None:
    """`-old` sorts first on v2.3.0's commit, yet the first baseline is `v2.3.0`; a commit
    whose only tag is refused is labelled by its sha."""
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    hide_release(repo)
    _odd_tags(repo)
    lone = repo.commits[1]
    gitutil.git(repo.path, "update-ref", "refs/tags/-lone", lone)
    with GitRepo(repo.path) as git:
        good = initial_last_good(git, git.resolve("HEAD"))
        assert good is not None and good.ref == "v2.3.0"
        assert label_of(git, git.resolve(lone)) == lone


def test_the_first_baseline_follows_ancestry_when_every_date_ties(tmp_path: Path) -> None:
    """All commits and tags made within one second: v1.0, v1.1 (and `ünï` beside it, made
    later), v2.0, a commit after it. The newest-but-one release is v1.1, not `ünï`."""
    repo = gitutil.make_repo(tmp_path / "repo")
    same = {"GIT_AUTHOR_DATE": "@1704067200 +0000", "GIT_COMMITTER_DATE": "@1704067200 +0000"}

    def commit(name: str, *tags: str) -> None:
        (repo / "f.txt").write_text(name)
        gitutil.git(repo, "add", "-A", env=same)
        gitutil.git(repo, "commit", "-q", "-m", name, env=same)
        for tag in tags:
            gitutil.git(repo, "tag", "-a", "-m", tag, tag, env=same)

    commit("one", "v1.0")
    commit("two", "v1.1", "ünï")
    commit("three", "v2.0")
    commit("four")
    with GitRepo(repo) as git:
        v11 = git.resolve("v1.1").sha
        for head in ("HEAD", "v2.0"):
            good = initial_last_good(git, git.resolve(head))
            assert good is not None and (good.ref, good.sha) == ("v1.1", v11), head
        good = initial_last_good(git, git.resolve("v1.1"))
        assert good is not None and good.ref == "v1.0"
        assert label_of(git, git.resolve("v1.1")) == "v1.1"
    # The guard's fallback (no rollback_to, no last known good) is the same release.
    from bisector.config import parse_config
    from bisector.guard.service import Guardian

    cfg = parse_config(
        "benchmark: {command: [python, b.py]}\nmetrics: {latency_ms: {direction: lower}}\n"
        "guard: {prometheus: 'http://127.0.0.1:9', checks: [{name: p99, query: up, max: 1}]}\n"
    )
    assert Guardian(repo, cfg).rollback_ref() == "v1.1"
