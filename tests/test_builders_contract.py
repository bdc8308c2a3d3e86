"""Contract tests every environment builder in `BUILDERS` passes.

A new builder (docker) joins by adding its name to `BUILDERS`; when it needs special
setup or a service, add a `make` entry to `SETUPS` and skip there when the service is
missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bisector.builders.base import EnvBuilder
from bisector.builders.registry import BUILDERS, make_builder
from bisector.config import Benchmark, DockerOptions, Environment
from bisector.core.types import Commit
from bisector.engine.checkouts import Checkouts, is_clean_checkout_of
from bisector.engine.runner import TrialRunner
from bisector.errors import BuildError
from bisector.gitrepo import GitRepo
from bisector.ports import TrialStatus
from bisector.testing.gitutil import commit, make_repo
from bisector.testing.wheels import make_wheel
from tests.docker_support import BASE_IMAGE, docker_or_skip

BENCH = """\
import json, sys
from importlib import metadata
import app
try:
    major = int(metadata.version("demo").split(".")[0])
except metadata.PackageNotFoundError:
    major = 0
print(json.dumps({"version_major": major, "code": app.VALUE, "_python": sys.version.split()[0]}))
"""


@dataclass
class Repo:
    root: Path
    wheelhouse: Path
    commits: dict[
        str, Commit
    ]  # same1, same2 (same pins), other (new pins), broken (no such package)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    base = tmp_path_factory.mktemp("contract")
    wheelhouse = base / "wheels"
    for version in ("1.0", "2.0"):
        make_wheel(wheelhouse, "demo", version, {"demo/__init__.py": f"V = {version!r}\n"}, [])
    root = make_repo(base / "repo")
    steps = {
        "same1": ("demo==1.0\n", "VALUE = 1\n"),
        "same2": ("# pinned\nDemo == 1.0   # same pin, other spelling\n\n", "VALUE = 2\n"),
        "other": ("demo==2.0\n", "VALUE = 3\n"),
        "broken": ("no-such-package==9.9\n", "VALUE = 4\n"),
    }
    commits: dict[str, Commit] = {}
    gitrepo = GitRepo(root)
    for name, (reqs, code) in steps.items():
        commit(root, {"requirements.txt": reqs, "app.py": code, "bench.py": BENCH}, name)
        commits[name] = gitrepo.resolve("HEAD")
    gitrepo.close()
    return Repo(root, wheelhouse, commits)


def _environment(name: str, repo: Repo, cache_size: int) -> Environment:
    return Environment(
        builder=name,
        requirements=["requirements.txt"],
        cache_size=cache_size,  # type: ignore[arg-type]
        find_links=[str(repo.wheelhouse)],
        no_index=True,
    )


def _default_setup(name: str, repo: Repo, store: Path, cache_size: int) -> EnvBuilder:
    return make_builder(
        name, vcs=GitRepo(repo.root), environment=_environment(name, repo, cache_size), store=store
    )


def _docker_setup(name: str, repo: Repo, store: Path, cache_size: int) -> EnvBuilder:
    docker_or_skip()
    environment = _environment(name, repo, cache_size).model_copy(
        update={"docker": DockerOptions(base_image=BASE_IMAGE, max_images=cache_size)}
    )
    return make_builder(name, vcs=GitRepo(repo.root), environment=environment, store=store)


# Builders that need more than the default construction register here.
SETUPS: dict[str, Callable[[str, Repo, Path, int], EnvBuilder]] = {"docker": _docker_setup}


@dataclass
class Harness:
    builder: EnvBuilder
    checkouts: Checkouts
    store: Path

    def run(self, commit: Commit) -> dict[str, object]:
        built = self.builder.prepare(commit, self.checkouts.get(commit))
        runner = TrialRunner(self.store / "runs" / commit.short, timeout_s=60)
        result = runner.measure_in(built, Benchmark(command=["python", "bench.py"]))
        assert result.status is TrialStatus.OK, result.stderr_path.read_text()
        return {**{k: v[0] for k, v in result.metrics.items()}, **result.meta}


# Marks of builders whose tests need a service or take long (docker builds images).
MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    "docker": (pytest.mark.docker, pytest.mark.slow)
}


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, ())) for name in sorted(BUILDERS)])
def builder_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def _harness(name: str, repo: Repo, store: Path, cache_size: int = 4) -> Iterator[Harness]:
    builder = SETUPS.get(name, _default_setup)(name, repo, store, cache_size)
    git = GitRepo(repo.root)
    try:
        with Checkouts(git, store) as checkouts:
            yield Harness(builder, checkouts, store)
    finally:
        builder.close()
        git.close()


@pytest.fixture
def harness(builder_name: str, repo: Repo, tmp_path: Path) -> Iterator[Harness]:
    yield from _harness(builder_name, repo, tmp_path / "store")


def _needs_isolation(h: Harness) -> None:
    if not type(h.builder).isolates_dependencies:
        pytest.skip(f"{type(h.builder).name} does not isolate dependencies")


def test_benchmark_runs_in_the_checkout(harness: Harness, repo: Repo) -> None:
    """Each candidate's benchmark sees its own commit's code, with runtime facts recorded."""
    assert harness.run(repo.commits["same1"])["code"] == 1
    assert harness.run(repo.commits["other"])["code"] == 3
    built = harness.builder.prepare(
        repo.commits["same1"], harness.checkouts.get(repo.commits["same1"])
    )
    assert built.runtime is not None and built.runtime.python_version
    assert built.env_key == harness.builder.env_key(repo.commits["same1"])


def test_shared_pins_share_one_environment(harness: Harness, repo: Repo) -> None:
    """Two commits with the same pins (spelled differently) get one key and one build."""
    _needs_isolation(harness)
    b = harness.builder
    assert b.env_key(repo.commits["same1"]) == b.env_key(repo.commits["same2"])
    assert harness.run(repo.commits["same1"])["version_major"] == 1
    assert harness.run(repo.commits["same2"])["version_major"] == 1
    assert b.builds_done == 1


def test_other_pins_get_another_environment(harness: Harness, repo: Repo) -> None:
    """A pin change gives another key, and the benchmark sees the pinned version."""
    _needs_isolation(harness)
    b = harness.builder
    assert b.env_key(repo.commits["other"]) != b.env_key(repo.commits["same1"])
    assert harness.run(repo.commits["other"])["version_major"] == 2
    built = b.prepare(repo.commits["other"], harness.checkouts.get(repo.commits["other"]))
    assert ("demo", "2.0") in built.packages


def test_uninstallable_requirement_is_a_build_error_with_log(harness: Harness, repo: Repo) -> None:
    """A requirement that cannot be installed raises BuildError naming a kept log."""
    _needs_isolation(harness)
    commit = repo.commits["broken"]
    with pytest.raises(BuildError) as info:
        harness.builder.prepare(commit, harness.checkouts.get(commit))
    log_path = info.value.log_path
    assert log_path is not None and log_path.is_file()
    assert "no-such-package" in log_path.read_text()
    with pytest.raises(BuildError):  # remembered: not rebuilt for the next commit with that key
        harness.builder.prepare(commit, harness.checkouts.get(commit))


def test_lru_evicts_beyond_cache_size(builder_name: str, repo: Repo, tmp_path: Path) -> None:
    """With room for one environment, building a second evicts the first."""
    for h in _harness(builder_name, repo, tmp_path / "store", cache_size=1):
        _needs_isolation(h)
        first, second = repo.commits["same1"], repo.commits["other"]
        h.run(first)
        h.run(second)
        assert h.builder.builds_done == 2
        h.run(first)  # evicted, so built again
        assert h.builder.builds_done == 3


def test_prefetch_builds_in_background_and_prepare_reuses_it(harness: Harness, repo: Repo) -> None:
    """prefetch returns at once; a later prepare reuses (or awaits) that build."""
    started = time.monotonic()
    harness.builder.prefetch([repo.commits["other"], repo.commits["same1"], repo.commits["same2"]])
    harness.builder.prefetch([repo.commits["other"]])  # a second request is not a second build
    prefetch_s = time.monotonic() - started
    started = time.monotonic()
    assert harness.run(repo.commits["other"])["code"] == 3
    # Building inline would make prefetch (two builds) outlast this one run (one python
    # process, plus whatever remains of the background build it awaits).
    assert prefetch_s < time.monotonic() - started
    assert harness.run(repo.commits["same2"])["code"] == 2
    if type(harness.builder).isolates_dependencies:
        assert harness.builder.builds_done == 2


def test_checkouts_are_reused_and_removed(repo: Repo, tmp_path: Path) -> None:
    """A checkout at the right commit is reused; closing removes every worktree."""
    git = GitRepo(repo.root)
    commit = repo.commits["same2"]
    with Checkouts(git, tmp_path) as first:
        path = first.get(commit)
        assert is_clean_checkout_of(path, commit.sha)
        (path / "marker").write_text("kept")  # untracked: a reused tree keeps it
        with Checkouts(git, tmp_path) as second:
            assert second.get(commit) == path and (path / "marker").exists()
            second._owned.clear()  # hand ownership back to `first`
    assert not path.exists()
    git.close()


def test_hand_made_wheels_are_named_and_reproducible(tmp_path: Path) -> None:
    """Wheel names follow PEP 427 and the same inputs give the same bytes."""
    wheel = make_wheel(
        tmp_path / "w", "Odd.Name-pkg", "0.1", {"odd/__init__.py": "X = 1\n"}, ["demo>=1"]
    )
    assert wheel.name == "odd_name_pkg-0.1-py3-none-any.whl"
    assert (
        make_wheel(
            tmp_path / "w2", "Odd.Name-pkg", "0.1", {"odd/__init__.py": "X = 1\n"}, ["demo>=1"]
        ).read_bytes()
        == wheel.read_bytes()
    )
