"""`snapshots.store` may not be the repository itself nor git's own folder.

The store holds journal.sqlite, runs/ and worktrees/: in the repository's root they land in
the working tree (and in `git status`), in `.git` among git's own files. Every command
refuses such a config before it writes anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bisector.testing.gitutil import commit, make_repo
from tests.conftest import run_cli, tree_digest

CONFIG = """\
benchmark:
  command: [python, bench.py]
metrics:
  latency_ms: {direction: lower, threshold: 5%}
snapshots:
  store: STORE
"""
BENCH = 'import json; print(json.dumps({"latency_ms": [1.0]}))\n'


def _repo(tmp_path: Path, store: str) -> Path:
    repo = make_repo(tmp_path / "repo")
    config = CONFIG.replace("STORE", store.replace("REPO", str(repo)))
    commit(repo, {"bench.py": BENCH, "bisector.yaml": config}, "i", tag="v1")
    commit(repo, {"a.txt": "1\n"}, "two", tag="v2")
    return repo


@pytest.mark.parametrize(
    ("store", "said"),
    [
        ('""', "'' is the repository itself"),
        (".", "'.' is the repository itself"),
        ("sub/..", "'sub/..' is the repository itself"),
        ("REPO", "is the repository itself"),
        (".git", "'.git' is git's own folder"),
        ("./.git/bisector", "'./.git/bisector' is git's own folder"),
        ("REPO/.git/bisector", "is git's own folder"),
    ],
)
def test_a_store_in_the_working_tree_root_or_in_git_is_refused(
    tmp_path: Path, store: str, said: str
) -> None:
    repo = _repo(tmp_path, store)
    before = tree_digest(repo)
    for args in (("run", "--good", "v1", "--bad", "v2"), ("runs",), ("config", "check")):
        done = run_cli(*args, cwd=repo)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert [line.split(":")[0] for line in lines] == ["error", "hint"], done.stderr
        assert "snapshots.store: " in lines[0] and said in lines[0], lines[0]
        assert "`.bisector`" in lines[1]
    assert tree_digest(repo) == before


@pytest.mark.parametrize("store", [".bisector-other", "REPO/../outside-store"])
def test_a_store_elsewhere_is_still_taken(tmp_path: Path, store: str) -> None:
    repo = _repo(tmp_path, store)
    done = run_cli("run", "--good", "v1", "--bad", "v2", cwd=repo)
    assert done.returncode == 3, done.stderr  # not reproduced: the benchmark is flat
    place = (repo / store.replace("REPO", str(repo))).resolve()
    assert (place / "journal.sqlite").is_file()
