"""Ray runs refused before anything is measured or written: one `error:` line, exit 2."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bisector.testing.raycluster import RayHead, free_port, sleep_repo

from .conftest import run_cli, tree_digest

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray]


def _refused(
    tmp_path: Path, address: str, *extra: str, ray: dict[str, object] | None = None
) -> tuple[str, float]:
    repo = sleep_repo(tmp_path / "repo", 3, 1)
    config = tmp_path / "b.yaml"
    config.write_text(
        json.dumps(
            {
                "benchmark": {"command": ["python", "bench.py"]},
                "metrics": {"latency_ms": {"direction": "lower"}},
                "execution": {"executor": "ray", "ray": {"address": address, **(ray or {})}},
            }
        )
    )
    before = tree_digest(repo)
    t0 = time.monotonic()
    proc = run_cli(
        "run", "--repo", str(repo), "--config", str(config), "--good", "good", "--bad", "bad",
        *extra, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert tree_digest(repo) == before
    return proc.stderr, took


def test_an_unreachable_head_is_one_error_within_seconds(tmp_path: Path) -> None:
    """Nothing listens at the address: Ray would retry for minutes; the run says so at once."""
    address = f"127.0.0.1:{free_port()}"
    err, took = _refused(tmp_path, address)
    assert f"error: cannot reach the Ray head at {address}" in err, err[-2000:]
    assert "hint: " in err
    assert took < 30


def test_more_workers_than_the_config_allows_is_refused(tmp_path: Path) -> None:
    """`--workers` has the bound of execution.workers (1-256)."""
    err, _ = _refused(tmp_path, "127.0.0.1:1", "--workers", "257")
    assert "--workers" in err and "256" in err, err[-2000:]


def test_a_trial_the_cluster_cannot_hold_is_refused_before_anything_is_written(
    tmp_path: Path, ray_head: RayHead
) -> None:
    """More GPUs a trial than the whole cluster has: refused after connecting, but before
    the run row, the endpoints' snapshots or any checkout is written."""
    shape = {"resources_per_trial": {"num_cpus": 1, "num_gpus": 3}}  # the head has 2
    err, _ = _refused(tmp_path, ray_head.address, ray=shape)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: the Ray cluster cannot run one trial: it needs GPU 3 (cluster: 2)"]
    assert "hint: " in err
