"""`bisector run` when the benchmark does not print the configured metric (sim, local builder)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from bisector.testing.sample import SampleRepo

from .conftest import run_cli


def test_metric_the_benchmark_does_not_print_is_one_error_after_a_few_trials(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """A config metric missing from the benchmark's output: exit 2 naming it and what was printed."""
    sample = make_sample(n_commits=6, culprit=3, repeats=(3, 12))
    config = sample.path / "bisector.yaml"
    config.write_text(config.read_text().replace("  latency_ms: {", "  latency: {"))
    done = run_cli(
        "run", "--good", "v2.3.0", "--bad", "v2.4.0", "--repo", str(sample.path), timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    error = next(line for line in lines if line.startswith("error: "))
    assert error == "error: the benchmark printed accuracy, latency_ms but not latency"
    assert any(line.startswith("hint: ") and "--metric" in line for line in lines)
    with sqlite3.connect(sample.path / ".bisector" / "journal.sqlite") as db:
        trials = db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    assert 0 < trials <= 2 * 3  # repeats.min trials of each endpoint, not a trial more
