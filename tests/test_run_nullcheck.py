"""On generated repositories: endpoints too noisy to rule a regression out give exit 4, a quiet null range exit 3."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bisector.core.types import Status
from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.testing.sample import SampleRepo

from .conftest import run_cli


@pytest.mark.slow
def test_endpoints_too_noisy_to_rule_out_a_regression_exit_4(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """A +15% step under 50% noise (seeded): exit 4 over the whole range, the reason in the JSON and on stderr."""
    sample = make_sample(
        n_commits=12, culprit=7, slowdown=0.15, noise=0.5, seed_file=str(tmp_path / "seed")
    )
    done = run_cli(
        "run", "--good", "v2.3.0", "--bad", "v2.4.0", "--json", "--repo", str(sample.path)
    )
    assert done.returncode == 4, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "inconclusive"
    assert doc["culprit"] is None and doc["culprits"] == [] and doc["suspect"] is None
    assert (
        doc["details"]["reproduction"]["regressed"] is False
        or not (doc["details"]["reproduction"]["significant"])
    )
    (note,) = doc["details"]["notes"]
    assert "cannot rule out a regression of the threshold 5%" in note
    assert doc["noise"]["warning"] and doc["noise"]["warning"] in note
    assert doc["range"]["last_good"] == doc["good"]["commit"]
    assert doc["range"]["first_bad"] == doc["bad"]["commit"]
    assert "cannot rule out a regression of the threshold 5%" in done.stderr


@pytest.mark.slow
def test_quiet_range_without_a_regression_still_exits_3(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """No step and 3% noise: the endpoints rule a 5% regression out, not_reproduced (exit 3)."""
    sample = make_sample(n_commits=12, culprit=7, slowdown=0.0, noise=0.03)
    outcome = run_bisection(RunRequest(good="v2.3.0", bad="v2.4.0", repo=sample.path))
    doc = outcome.document.to_json()
    assert outcome.status is Status.NOT_REPRODUCED and outcome.status.exit_code == 3
    assert doc["range"] is None and "notes" not in doc["details"]
