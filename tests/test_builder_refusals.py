"""Builders a command cannot use are refused before anything is measured or written.

`deps` (and a config isolation whose target is a dependency file) needs a builder that
installs dependencies: with the local builder both sides would run in the same packages
and come out "not reproduced" having measured nothing. `cache list | prune` refuse a
`--builder` name there is no builder for, as `run` does, and `cache prune` refuses to
remove environments while a run holds the store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bisector.testing import gitutil

from .conftest import repo_with_environment, run_cli, tree_digest


def _repo(tmp_path: Path, environment: str) -> Path:
    return repo_with_environment(tmp_path, environment)


def _refused(repo: Path, *args: str) -> list[str]:
    """Exit 2, one error line and one hint, every file as it was (no store, no journal)."""
    before = tree_digest(repo)
    done = run_cli(*args, "--repo", str(repo), timeout=120)
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], done.stderr
    assert tree_digest(repo) == before
    return lines


@pytest.mark.parametrize(
    "environment",
    ["{requirements: [requirements.txt]}", "{builder: local, requirements: [requirements.txt]}"],
)
def test_deps_with_the_local_builder_is_refused_before_measuring(
    tmp_path: Path, environment: str
) -> None:
    repo = _repo(tmp_path, environment)
    (tmp_path / "good.txt").write_text("x==1\n")
    (tmp_path / "bad.txt").write_text("x==2\n")
    error, hint = _refused(
        repo,
        "deps",
        "--good-lock",
        str(tmp_path / "good.txt"),
        "--bad-lock",
        str(tmp_path / "bad.txt"),
        "--json",
    )
    assert error == (
        "error: bisector deps needs a builder that installs dependencies; "
        "environment.builder is local"
    )
    assert "environment.builder: venv" in hint and "bisector.yaml" in hint
    assert not (repo / ".bisector").exists()


def test_config_isolation_of_a_dependency_file_with_the_local_builder_is_refused(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, "{requirements: [requirements.txt]}")
    (tmp_path / "bad.txt").write_text("x==2\n")
    (error, _) = _refused(
        repo,
        "config",
        "--good",
        str(repo / "requirements.txt"),
        "--bad",
        str(tmp_path / "bad.txt"),
        "--target",
        "requirements.txt",
    )
    assert "needs a builder that installs dependencies" in error


def test_config_isolation_of_a_config_file_still_runs_with_the_local_builder(
    tmp_path: Path,
) -> None:
    """Only dependency files need an installing builder: a config side is measured."""
    repo = _repo(tmp_path, "{requirements: [requirements.txt]}")
    gitutil.commit(repo, {"configs/a.yaml": "k: 1\n"}, "config")
    (tmp_path / "a.yaml").write_text("k: 1\n")
    done = run_cli(
        "config",
        "--good",
        str(repo / "configs/a.yaml"),
        "--bad",
        str(tmp_path / "a.yaml"),
        "--target",
        "configs/a.yaml",
        "--json",
        "--repo",
        str(repo),
        timeout=300,
    )
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["status"] == "not_reproduced"


@pytest.mark.parametrize("command", [["cache", "list"], ["cache", "prune", "--keep", "0"]])
def test_cache_refuses_an_unknown_builder_as_run_does(tmp_path: Path, command: list[str]) -> None:
    repo = _repo(tmp_path, "{builder: venv}")
    env = repo / ".bisector" / "envs" / "k1"
    env.mkdir(parents=True)
    (env / "bisector-env.json").write_text("{}")  # a complete environment prune would remove
    lines = _refused(repo, *command, "--builder", "podman")
    ran = run_cli(
        "run", "--good", "HEAD", "--bad", "HEAD", "--builder", "podman", "--repo", str(repo)
    )
    assert ran.returncode == 2
    assert lines == ran.stderr.strip().splitlines()
    assert lines == ["error: unknown builder 'podman'", "hint: use local, venv or docker"]
    assert env.is_dir()


def test_a_culprit_commit_with_the_local_builder_keeps_a_note_not_an_error(
    tmp_path: Path,
) -> None:
    """Inside `run`'s culprit the package changes are left out with a note; configs split."""
    from types import SimpleNamespace

    from bisector.builders.local import LocalBuilder
    from bisector.config import load_config
    from bisector.isolate.run import find_changes

    repo = _repo(tmp_path, "{requirements: [requirements.txt]}")
    cfg = load_config(repo, None)
    measurer: Any = SimpleNamespace(builder=object.__new__(LocalBuilder))
    good = ({"requirements.txt": b"x==1\n"}, {"c.yaml": b"k: 1\n"})
    bad = ({"requirements.txt": b"x==2\n"}, {"c.yaml": b"k: 2\n"})
    changes, notes = find_changes(cfg, measurer, good, bad)
    assert [c.name for c in changes] == ["k"]
    assert notes == [
        "the local builder does not isolate dependencies: 1 package change(s) not split"
    ]


def test_cache_prune_while_a_run_holds_the_store_is_refused_and_removes_nothing(
    tmp_path: Path,
) -> None:
    """`cache prune` removed a running bisection's environments under its trials (the run
    rebuilt them, or its trials failed); it now refuses while the run lock is held (exit 2)."""
    from bisector.builders.venv import VenvBuilder
    from bisector.config import Environment
    from bisector.engine.checkouts import Checkouts
    from bisector.gitrepo import GitRepo

    repo = _repo(tmp_path, "{builder: venv, no_index: true}")
    store = repo / ".bisector"
    with GitRepo(repo) as git, Checkouts(git, store) as checkouts:
        head = git.resolve("HEAD")
        builder = VenvBuilder(git, Environment(builder="venv", no_index=True), store)
        env_folder = builder.prepare(head, checkouts.get(head)).python.parent.parent
        builder.close()
    assert env_folder.is_dir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom bisector.store.runlock import RunLock\n"
            f"with RunLock(__import__('pathlib').Path({str(store)!r})):\n"
            "    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        error, hint = _refused(repo, "cache", "prune", "--keep", "0")
        assert error.startswith("error: cannot prune the cache while a bisector run (pid ")
        assert hint.startswith("hint: wait for it to finish")
        assert env_folder.is_dir()
    finally:
        holder.communicate("", timeout=30)
    done = run_cli("cache", "prune", "--keep", "0", "--repo", str(repo), timeout=120)
    assert done.returncode == 0, done.stderr
    assert not env_folder.exists()
