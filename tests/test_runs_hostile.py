"""`bisector runs` and `bisector report` against odd options and a journal edited by hand.

One small bisection (local builder, a deterministic benchmark) makes the journal; each
test works on its own copy of the repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bisector.testing.gitutil import commit, make_repo
from tests.conftest import run_cli

BENCH = """\
import json
print(json.dumps({"latency_ms": [float(open("slow.txt").read())] * 3}))
"""
CONFIG = """\
benchmark:
  command: [python, bench.py]
  repeats: {min: 3, max: 6}
metrics:
  latency_ms: {direction: lower, threshold: 5%}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose journal holds one finished run (v1..v2, culprit 'Slow down')."""
    repo = make_repo(tmp_path_factory.mktemp("runs") / "repo")
    commit(repo, {"bench.py": BENCH, "bisector.yaml": CONFIG, "slow.txt": "10\n"}, "i", tag="v1")
    commit(repo, {"a.txt": "1\n"}, "unrelated")
    commit(repo, {"slow.txt": "20\n"}, "Slow down")
    commit(repo, {"a.txt": "2\n"}, "unrelated again", tag="v2")
    done = run_cli("run", "--good", "v1", "--bad", "v2", cwd=repo)
    assert done.returncode == 0, done.stderr
    return repo


@pytest.fixture
def repo(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "repo", symlinks=True))


def test_a_limit_larger_than_sqlite_takes_lists_every_run(repo: Path) -> None:
    done = run_cli("runs", "--json", "--limit", "99999999999999999999", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in json.loads(done.stdout)["runs"]] == ["found"]
