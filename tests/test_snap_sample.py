"""`bisector snapshot diff` on generated sample repositories matches the generator's truth."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bisector.testing.sample import SampleRepo, expected_diff
from tests.conftest import run_cli, tree_digest

pytestmark = pytest.mark.slow  # each test builds sample repos and runs the CLI on them

# The generator's own bisector.yaml does not validate on main yet (benchmark.env values
# are numbers, the model wants strings), so these tests name an equivalent config.
SNAP_CONFIG = """\
benchmark: {command: [python, bench.py]}
metrics: {latency_ms: {direction: lower}}
environment: {requirements: [requirements.txt]}
snapshots: {configs: ["configs/**/*.yaml"], store: .bisector}
"""


def _config(tmp_path: Path) -> str:
    path = tmp_path / "snap-bisector.yaml"
    path.write_text(SNAP_CONFIG)
    return str(path)


@pytest.mark.parametrize("kind", ["code", "config", "dependency"])
def test_diff_of_two_releases_reports_exactly_what_the_generator_changed(
    make_sample: Callable[..., SampleRepo], kind: str, tmp_path: Path
) -> None:
    """Every changed key and package of v2.3.1..v2.4.0 is listed, and nothing else."""
    repo = make_sample(kind=kind, merges=True)
    proc = run_cli(
        "snapshot",
        "diff",
        "v2.3.1",
        "v2.4.0",
        "--json",
        "--config",
        _config(tmp_path),
        cwd=repo.path,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = expected_diff(repo, "v2.3.1", "v2.4.0")
    assert sorted((c["file"], c["key"]) for c in got["configs"]) == sorted(want["config_keys"])
    assert {p["name"]: (p["from"], p["to"]) for p in got["packages"]} == want["packages"]
    assert all(c["change"] in ("added", "removed", "changed") for c in got["configs"])
    assert all(p["risk"] in ("high", "medium", "low") for p in got["packages"])


def test_sample_diff_table_and_no_store_on_bad_ref(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """The human diff goes to stderr; an unknown ref leaves the store untouched."""
    repo = make_sample()
    proc = run_cli(
        "snapshot", "diff", "v2.3.1", "v2.4.0", "--config", _config(tmp_path), cwd=repo.path
    )
    assert proc.returncode == 0 and proc.stdout == ""
    assert "tokenkit" in proc.stderr and "model.dtype" in proc.stderr
    before = tree_digest(repo.path / ".bisector")
    bad = run_cli(
        "snapshot", "diff", "v2.3.1", "v9.9.9", "--config", _config(tmp_path), cwd=repo.path
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown ref 'v9.9.9'")
    assert tree_digest(repo.path / ".bisector") == before
