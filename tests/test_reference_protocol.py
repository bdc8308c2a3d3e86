"""`benchmark.reference: auto` with a benchmark of one's own: the two variables of the protocol."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bisector.config import parse_config
from bisector.engine.benchkey import bench_key
from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.testing.gitutil import commit, make_repo

from .conftest import run_cli

# Writes its "outputs" where BISECTOR_REFERENCE_OUT says; with BISECTOR_REFERENCE_IN,
# prints whether it read them back (the metric `agreed`).
BENCH = """\
import json, os
out, ref = os.environ.get("BISECTOR_REFERENCE_OUT"), os.environ.get("BISECTOR_REFERENCE_IN")
if out:
    open(out, "w").write("outputs of the good endpoint")
agreed = 1.0 if ref and open(ref).read() == "outputs of the good endpoint" else 0.0
print(json.dumps({"ms": [10.0, 10.0], "agreed": agreed}))
"""
CONFIG = """\
benchmark:
  command: [python, bench.py]
  repeats: {min: 3, max: 5}
  reference: auto
metrics:
  ms: {direction: lower}
environment: {builder: local}
snapshots: {configs: []}
"""


def _repo(tmp_path: Path, bench: str) -> Path:
    repo = make_repo(tmp_path / "r")
    commit(repo, {"bench.py": bench, "bisector.yaml": CONFIG}, "one", tag="v1")
    commit(repo, {"notes.txt": "x\n"}, "two", tag="v2")
    return repo


def test_every_trial_gets_the_reference_made_at_the_good_endpoint(tmp_path: Path) -> None:
    """The benchmark writes its reference once (OUT); every journaled trial read it back (IN)."""
    repo = _repo(tmp_path, BENCH)
    doc = run_bisection(RunRequest(good="v1", bad="v2", repo=repo)).document
    assert doc.status.value == "not_reproduced"
    folder = repo / ".bisector" / "runs" / str(doc.run_id) / "reference"
    assert (folder / "reference.pt").read_text() == "outputs of the good endpoint"
    assert len(list(folder.glob("trial-*.out"))) == 1  # made once, its log kept
    with sqlite3.connect(repo / ".bisector" / "journal.sqlite") as db:
        rows = [json.loads(m) for (m,) in db.execute("SELECT metrics FROM trials")]
    assert len(rows) >= 6 and all(r["agreed"] == [1.0] for r in rows), rows


def test_with_reference_auto_the_good_endpoint_is_part_of_the_benchmark_key() -> None:
    """Agreement is relative to the good endpoint's outputs: another good endpoint, another key."""
    plain = parse_config(CONFIG.replace("  reference: auto\n", ""))
    auto = parse_config(CONFIG)
    assert bench_key(plain, "a" * 40) == bench_key(plain, "b" * 40) == bench_key(plain)
    assert bench_key(auto, "a" * 40) == bench_key(auto, "a" * 40)
    assert bench_key(auto, "a" * 40) != bench_key(auto, "b" * 40) != bench_key(plain)


def test_a_benchmark_that_writes_no_reference_is_one_error(tmp_path: Path) -> None:
    """A benchmark that ignores BISECTOR_REFERENCE_OUT stops the run: exit 2, error and hint."""
    repo = _repo(tmp_path, "print('{\"ms\": 1.0}')\n")
    done = run_cli("run", "--good", "v1", "--bad", "v2", "--repo", str(repo))
    assert done.returncode == 2, done.stderr
    error = next(line for line in done.stderr.splitlines() if line.startswith("error: "))
    assert "wrote no reference outputs to $BISECTOR_REFERENCE_OUT" in error
    assert "hint: " in done.stderr
