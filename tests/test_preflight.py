"""Before measuring, the local builder says when the endpoints' pins cannot be what it measures."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from bisector.config import parse_config
from bisector.engine.preflight import local_pin_warnings, preflight
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.testing.gitutil import commit, make_repo
from bisector.testing.sample import SampleRepo

from .conftest import run_cli

CONFIG = "benchmark: {command: [python, b.py]}\nmetrics: {ms: {direction: lower}}\n"


def test_pin_warnings_name_moved_and_mismatched_packages() -> None:
    """Pins that moved between endpoints, and installed versions off the pins, are each named."""
    good = {"fastpad": "1.0.0", "numpy": "1.26.4", "tiny": "1.0"}
    bad = {"fastpad": "1.3.0", "numpy": "1.26.4", "tiny": "1.0.0"}
    installed = {"numpy": "2.1.0", "tiny": "1.0"}
    moved, differ = local_pin_warnings(good, bad, installed)
    assert "fastpad 1.0.0 -> 1.3.0" in moved and "--builder venv" in moved
    assert "tiny" not in moved  # 1.0 and 1.0.0 are the same version
    assert "numpy pinned 1.26.4, installed 2.1.0" in differ and "--builder venv" in differ
    assert local_pin_warnings(good, good, {**installed, **good}) == []


def test_preflight_reads_pins_from_git_and_compares_with_this_interpreter(tmp_path: Path) -> None:
    """Pins at each endpoint come from git objects; an installed package on another version is named."""
    installed = metadata.version("packaging")
    repo = make_repo(tmp_path / "r")
    reqs = "packaging==0.0.1\nfastpad==1.0.0 ; python_version < '3'\n"  # the marker excludes it
    good = commit(repo, {"requirements.txt": reqs, "b.py": ""}, "one")
    bad = commit(repo, {"b.py": "# two\n"}, "two")
    cfg = parse_config(CONFIG)
    with GitRepo(repo) as git:
        g, b = git.resolve(good), git.resolve(bad)
        warnings = preflight(git, cfg, "local", g, b)
        assert len(warnings) == 1
        assert f"packaging pinned 0.0.1, installed {installed}" in warnings[0]
        assert "fastpad" not in warnings[0]
        assert preflight(git, cfg, "venv", g, b) == []  # venv installs the pins


def test_reference_auto_with_docker_is_refused_before_anything(tmp_path: Path) -> None:
    """`benchmark.reference: auto` with the docker builder is an error before anything is written."""
    repo = make_repo(tmp_path / "r")
    sha = commit(repo, {"b.py": ""}, "one")
    cfg = parse_config(
        "benchmark: {command: [python, b.py], reference: auto}\nmetrics: {ms: {direction: lower}}\n"
    )
    with GitRepo(repo) as git, pytest.raises(BisectorError, match="docker builder"):
        c = git.resolve(sha)
        preflight(git, cfg, "docker", c, c)


def test_a_dependency_regression_under_local_warns_before_measuring(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """`run` with the local builder on a dependency culprit prints a warning: line before step 1."""
    sample = make_sample(kind="dependency", n_commits=8, culprit=5)
    proc = run_cli("run", "--good", "v2.3.1", "--bad", "v2.4.0", "--repo", str(sample.path))
    assert proc.returncode in (3, 4), proc.stderr  # the local builder cannot see the upgrade
    lines = proc.stderr.splitlines()
    warned = [i for i, line in enumerate(lines) if line.startswith("warning: the endpoints pin")]
    assert warned, proc.stderr
    text = " ".join(" ".join(lines[warned[0] :]).split())
    assert "fastpad 1.0.0 -> 1.3.0" in text and "use --builder venv" in text
    steps = [i for i, line in enumerate(lines) if line.startswith("[step")]
    assert not steps or warned[0] < steps[0]
