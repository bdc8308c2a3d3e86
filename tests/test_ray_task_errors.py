"""An error a Ray worker raised that Ray cannot send back to the driver (`task_errors`):
a failed trial whose reason is the worker's error, retried once like any failed trial,
never taken for a dead worker and sent again.

A `RayMeasurer` of a real repository on the session's real Ray head, in this process;
its trial task is one of `bisector.testing.unsendable`, which raise what the driver cannot
unpickle (`UnserializableException`) or the worker cannot pickle (a `RayTaskError` whose
cause is Ray's stand-in): nothing a benchmark or a commit can make bisector's own task
raise (tar's filter errors, once raised there, are now bisector errors: `archive`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bisector.config import parse_config
from bisector.gitrepo import GitRepo
from bisector.ports import TrialStatus
from bisector.store.journal import Journal
from bisector.testing.raycluster import RayHead, sleep_repo
from bisector.testing.unsendable import holding_a_lock, undecodable

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def measurer(ray_head: RayHead, tmp_path: Path) -> Iterator[Any]:
    from bisector.executors.ray_measurer import RayMeasurer

    repo = sleep_repo(tmp_path / "repo", 2, 1)
    cfg = {
        "benchmark": {
            "command": ["python", "bench.py"],
            "env": {"TRIAL_LOG": str(tmp_path / "ran")},
        },
        "metrics": {"latency_ms": {"direction": "lower"}},
        "execution": {
            "executor": "ray",
            "ray": {
                "address": ray_head.address,
                "resources_per_trial": {"num_cpus": 1},
                "cache_dir": str(tmp_path / "cache"),
            },
        },
    }
    store = tmp_path / "store"
    with GitRepo(repo) as git, Journal(store) as journal:
        good, bad = git.resolve("good"), git.resolve("bad")
        run, _ = journal.open_run(
            key="k", good_ref="good", bad_ref="bad", good_sha=good.sha, bad_sha=bad.sha,
            metric="latency_ms", options={}, fresh=True,
        )  # fmt: skip
        m = RayMeasurer(
            workers=1, cfg=parse_config(json.dumps(cfg)), git=git, journal=journal,
            run_id=run.id, run_dir=store / "runs" / run.id, store=store, builder_name="local",
            bench_key="bench", reuse_across_runs=False,
        )  # fmt: skip
        try:
            yield m
        finally:
            m.close()


@pytest.mark.parametrize(
    ("task", "error"),
    [
        (
            undecodable,
            "tarfile.OutsideDestinationError: 'x' would be extracted to '/elsewhere/x', "
            "which is outside the destination",
        ),
        (holding_a_lock, "RuntimeError: the model server kept its lock"),
    ],
)
def test_an_error_ray_cannot_send_back_fails_the_trial_with_its_reason(
    measurer: Any, tmp_path: Path, task: Callable[..., Any], error: str
) -> None:
    """The trial fails with the worker's error on one line: retried once (two runs, not
    the four of a worker lost three times), then the commit is untestable for that reason."""
    measurer._remotes[None] = ray.remote(task).options(num_cpus=1, max_retries=0)
    commit = measurer.git.resolve("bad")
    assert measurer.take(commit) is TrialStatus.SKIP
    assert (tmp_path / "ran").read_text().splitlines() == ["ran", "ran"]
    assert measurer.lost_trials == 0
    [trial] = measurer.trials(commit)
    assert trial.meta["_reason"] == f"raised on its worker: {error}"
    assert trial.meta["_attempts"] == 2
