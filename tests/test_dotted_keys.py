"""A config key whose name holds a dot: isolation, `snapshot diff` and `rollback --dry-run` agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bisector.isolate.run import isolate_files
from bisector.testing import gitutil
from bisector.testing.sample import SampleRepo
from tests.rollback_support import Demo, run_cli

# End to end: real repositories, stores and CLI processes (seconds each).
pytestmark = pytest.mark.slow

SERVING = "configs/serving.yaml"
SPEC: dict[str, Any] = {
    "n_commits": 8,
    "culprit": 5,
    "builder": "venv",
    "repeats": (3, 8),
    "noise": 0.03,
}
# The service reads cfg["batching"]["pad_to_target"]; a top-level key literally named
# "batching.pad_to_target" is ignored by it. Flattening both to `batching.pad_to_target`
# (as the three old flatteners did) hid one of them and, written back, set the other.
NESTED, DOTTED = "batching.pad_to_target", "batching\\.pad_to_target"


def _sides(head: str) -> tuple[bytes, bytes]:
    good = head + '"batching.pad_to_target": 1\n'
    bad = (
        head.replace("pad_to_target: false", "pad_to_target: true")
        + '"batching.pad_to_target": 2\n'
    )
    assert bad.count("pad_to_target: true") == 1
    return good.encode(), bad.encode()


def _named_by_snapshots_and_rollback(
    base: Path, good: bytes, bad: bytes
) -> tuple[set[str], set[str]]:
    """The keys `snapshot diff` and `rollback --dry-run` name between two tags holding the files."""
    repo = base / "cfgrepo"
    (repo / "configs").mkdir(parents=True)
    gitutil.make_repo(repo)
    for tag, data in (("v1", good), ("v2", bad)):
        (repo / SERVING).write_bytes(data)
        gitutil.commit_all(repo, tag, tag=tag)
    Demo(repo, base / "srv" / "configs").write_config()
    diff = run_cli("snapshot", "diff", "v1", "v2", "--repo", str(repo), "--json", cwd=repo)
    assert diff.returncode == 0, diff.stderr
    snap_keys = {c["key"] for c in json.loads(diff.stdout)["configs"] if c["file"] == SERVING}
    assert run_cli("rollback", "--to", "v2", "--yes", cwd=repo).returncode == 0
    dry = run_cli("rollback", "--to", "v1", "--dry-run", "--json", cwd=repo)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    return snap_keys, {k["key"] for k in plan["keys"] if k["file"] == "serving.yaml"}


def test_isolation_names_only_the_key_that_matters_and_everyone_names_it_alike(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """Of a changed nested key (slow) and a changed key named with a dot (harmless) only the nested one is blamed."""
    repo = make_sample(kind="dependency", **SPEC)  # HEAD's code does not pad by itself
    good, bad = _sides((repo.path / SERVING).read_text())
    doc = isolate_files(
        repo=repo.path,
        config=None,
        metric=None,
        good={SERVING: good},
        bad={SERVING: bad},
        what="config",
    )
    assert doc["status"] == "found", doc
    changes = {c["key"] for c in doc["isolation"]["changes"]}
    assert changes == {NESTED, DOTTED}
    assert doc["culprit"]["config_keys"] == [NESTED]
    snap_keys, rollback_keys = _named_by_snapshots_and_rollback(tmp_path, good, bad)
    assert snap_keys == rollback_keys == changes
