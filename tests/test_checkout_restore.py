"""Each trial of a commit starts from the commit's files: tracked files a trial changed in
its checkout are put back before the next one (untracked files stay), and the user's own
working tree is never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bisector.engine.checkouts import Checkouts
from bisector.gitrepo import GitRepo
from bisector.testing import gitutil

from .conftest import BENCH_PY_CONFIG, run_cli

# Prints the number in the tracked knob.txt, then doubles it there (a benchmark that
# rewrites its config); says whether the untracked file an earlier trial wrote is there.
BENCH = """\
import json, pathlib
knob, scratch = pathlib.Path("knob.txt"), pathlib.Path("scratch.tmp")
value, seen = float(knob.read_text()), scratch.exists()
knob.write_text(str(value * 2))
scratch.write_text("left by a trial")
print(json.dumps({"latency_ms": value, "_scratch_seen": seen}))
"""


@pytest.mark.slow
def test_a_benchmark_that_rewrites_a_tracked_file_does_not_bias_later_trials(
    tmp_path: Path,
) -> None:
    repo = gitutil.make_repo(tmp_path / "repo")
    good = gitutil.commit(
        repo,
        {"bench.py": BENCH, "bisector.yaml": BENCH_PY_CONFIG, "knob.txt": "10"},
        "first",
        tag="good",
    )
    gitutil.commit(repo, {"a.txt": "1\n"}, "unrelated")
    gitutil.commit(repo, {"knob.txt": "20"}, "slower", tag="bad")

    done = run_cli("run", "--good", "good", "--bad", "bad", "--builder", "local", cwd=repo)

    assert done.returncode == 0, done.stderr  # the culprit found
    assert done.stderr.count("changed tracked files of its checkout") == 1, done.stderr
    assert "knob.txt" in done.stderr
    outs = sorted((repo / ".bisector" / "runs").glob(f"*/{good[:12]}/trial-*.out"))
    printed = [json.loads(p.read_text().splitlines()[-1]) for p in outs]
    assert len(printed) >= 3
    assert {p["latency_ms"] for p in printed} == {10.0}  # not 10, 20, 40, ...
    assert [p["_scratch_seen"] for p in printed] == [False] + [True] * (len(printed) - 1)
    # the user's own working tree (at `bad`) is as it was
    assert (repo / "knob.txt").read_text() == "20"
    assert gitutil.git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_restore_never_reaches_the_users_tree_when_the_worktree_lost_its_git_file(
    tmp_path: Path,
) -> None:
    """The store is usually inside the user's repository: a git call in a worktree whose
    `.git` file a benchmark deleted would find the user's repository instead."""
    repo = gitutil.make_repo(tmp_path / "repo")
    sha = gitutil.commit(repo, {"a.txt": "1\n", "b.txt": "b\n"}, "first")
    (repo / "a.txt").write_text("the user's unsaved work\n")
    with GitRepo(repo) as git, Checkouts(git, repo / ".bisector") as checkouts:
        commit = git.resolve(sha)
        tree = checkouts.get(commit)
        assert checkouts.restore(commit) == []
        (tree / "b.txt").write_text("rewritten by a trial\n")
        (tree / ".git").unlink()
        assert checkouts.restore(commit) == ["b.txt"]
        assert (tree / "b.txt").read_text() == "b\n"
    assert (repo / "a.txt").read_text() == "the user's unsaved work\n"
