"""An emergency rollback never waits behind a bisection, and automatic rollbacks respect pause."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from bisector.daemon.cycle import CycleResult, Seams, execute
from bisector.engine.pipeline import RunOutcome, RunRequest, run_bisection
from bisector.ports import Progress, ProgressEvent
from bisector.store.control import ControlStore
from bisector.store.runlock import RunLockedError, run_lock
from tests.conftest import run_cli
from tests.daemon_support import released_repo, webhook

# End to end: real repositories, stores and CLI processes (seconds each).
pytestmark = pytest.mark.slow


class HeldBisection:
    """The real bisection, held at its first progress event until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, req: RunRequest, progress: Progress) -> RunOutcome:
        def held(event: ProgressEvent) -> None:
            if not self.entered.is_set():
                self.entered.set()
                assert self.release.wait(120), "never released"
            progress(event)

        return run_bisection(req, held)


def test_emergency_rollback_goes_through_during_a_cycle_which_then_does_not_roll_over_it(
    tmp_path: Path,
) -> None:
    """While a daemon cycle bisects, `bisector rollback` applies at once; the cycle's policy then skips, logs and alerts."""
    with webhook() as hook:
        repo = released_repo(tmp_path / "repo", webhook_url=hook.url, policy="rollback")
        live = tmp_path / "repo-live"
        held = HeldBisection()
        out: dict[str, CycleResult] = {}
        cycle = threading.Thread(
            target=lambda: out.update(result=execute(repo.path, None, Seams(bisect=held)))
        )
        cycle.start()
        try:
            assert held.entered.wait(120), "the cycle never started bisecting"
            done = run_cli(
                "rollback",
                "--to",
                "v2.3.0",
                "--yes",
                "--json",
                "--repo",
                str(repo.path),
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["status"] == "applied"
            assert cycle.is_alive()  # applied while the cycle still held its bisection
            # A second bisection on the store is refused, naming the cycle's process.
            with (
                pytest.raises(RunLockedError, match="already running"),
                run_lock(repo.path / ".bisector"),
            ):
                pass
        finally:
            held.release.set()
            cycle.join(300)
        result = out["result"]
        assert result.outcome == "regression", result
        rollback: dict[str, Any] = dict(result.detail["rollback"])
        assert rollback["status"] == "refused" and "while this cycle ran" in rollback["reason"], (
            rollback
        )
        with ControlStore(repo.path / ".bisector" / "journal.sqlite") as control:
            history = control.rollbacks()
        assert [(r.label, r.status) for r in history] == [("v2.3.0", "applied")]
        record = json.loads((live.parent / f".{live.name}.bisector" / "live.json").read_text())
        assert record["label"] == "v2.3.0"  # the operator's set is still live
        steps = [b.get("step") for b in hook.bodies]
        assert "rollback" in steps, hook.bodies
        refused = next(b for b in hook.bodies if b.get("step") == "rollback")
        assert "while this cycle ran" in str(refused["text"])


def test_run_rollback_is_refused_while_paused(tmp_path: Path) -> None:
    """`run --rollback` finds the culprit but, while paused, leaves the live configs alone and says why."""
    repo = released_repo(tmp_path / "repo", webhook_url=None)
    live = tmp_path / "repo-live"
    assert run_cli("pause", "--repo", str(repo.path)).returncode == 0
    done = run_cli(
        "run",
        "--good",
        "v2.3.1",
        "--bad",
        "v2.4.0",
        "--rollback",
        "--json",
        "--repo",
        str(repo.path),
    )
    assert done.returncode == 0, done.stderr  # the run's status decides its exit code (docs/cli.md)
    doc = json.loads(done.stdout)
    assert doc["status"] == "found"
    assert doc["rollback"]["status"] == "refused" and "paused" in doc["rollback"]["reason"]
    assert "paused" in done.stderr
    assert not live.exists() and not live.is_symlink()
    assert not list(
        tmp_path.glob(".repo-live.bisector*")
    )  # a refused rollback leaves nothing beside it
    with ControlStore(repo.path / ".bisector" / "journal.sqlite") as control:
        assert control.rollbacks() == [] and control.pause_state().paused
