"""A run with the venv builder: resolved environments reach the snapshots; --rollback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bisector.testing.sample import SampleRepo

from .conftest import run_cli


@pytest.mark.slow
def test_dependency_culprit_records_resolved_envs_and_rolls_back(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """venv run names the pin upgrade; snapshots hold resolved packages; --rollback restores configs."""
    sample = make_sample(n_commits=8, culprit=5, kind="dependency", builder="venv", slowdown=0.3)
    done = run_cli(
        "run",
        "--good",
        "v2.3.0",
        "--bad",
        "v2.4.0",
        "--json",
        "--rollback",
        "--repo",
        str(sample.path),
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["culprit"]["commit"] == sample.culprit
    assert doc["culprit"]["kind"] == "dependency"
    assert [d["name"] for d in doc["culprit"]["dependencies"]] == ["fastpad"]
    # The terminal and the page name the first bad version of the package (issue 14).
    assert doc["culprit"]["dependencies"][0]["first_bad"] == "1.2.0"
    assert "dependency: fastpad 1.0.0 -> 1.3.0, first bad version 1.2.0" in done.stderr
    page = Path(doc["report"]).read_text()
    isolation = page[page.index('<h2 id="isolation">') :]
    assert "<td><code>fastpad</code></td><td><strong>1.2.0</strong></td>" in isolation
    # Resolved environments were attached to the snapshots while measuring.
    diff = run_cli("snapshot", "diff", "v2.3.0", "v2.4.0", "--json", "--repo", str(sample.path))
    assert diff.returncode == 0, diff.stderr
    resolved = {r["name"]: r for r in json.loads(diff.stdout)["resolved"]}
    assert resolved["fastpad"]["from"] == "1.0.0" and resolved["fastpad"]["to"] == "1.3.0"
    # --rollback put v2.3.0's configs in the live folder.
    assert doc["rollback"]["status"] == "applied"
    live = Path(doc["rollback"]["target"])
    good_yaml = run_cli("snapshot", "show", "v2.3.0", "--json", "--repo", str(sample.path))
    assert good_yaml.returncode == 0
    assert "pad_to_target: false" in (live / "serving.yaml").read_text()
