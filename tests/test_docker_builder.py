"""The docker builder against a real daemon: bisection, container cleanup, clear errors.

Skipped when no daemon or no local base image is available (see tests/docker_support.py).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bisector.builders import make_builder
from bisector.builders.base import BuiltEnv, EnvBuilder
from bisector.checkouts import Checkouts
from bisector.config import DockerOptions, Environment
from bisector.errors import DockerError
from bisector.gitrepo import GitRepo
from bisector.runner import TrialRunner, TrialStatus
from bisector.sample import SampleSpec, build_sample_repo
from tests.docker_support import BASE_IMAGE, bisector_containers, docker_or_skip
from tests.test_builders_contract import _git

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BENCHES = {
    "ok.py": "import json, socket\n"
             "print(json.dumps({'value': 1.0, '_ifaces': [n for _, n in socket.if_nameindex()]}))\n",
    "fail.py": "import sys\nprint('boom', file=sys.stderr)\nsys.exit(1)\n",
    "sleep.py": "import time\ntime.sleep(120)\n",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EnvBuilder, BuiltEnv, Path]]:
    """A built environment (no requirements) for a one-commit repository with three benches."""
    docker_or_skip()
    root = tmp_path_factory.mktemp("tiny") / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    for name, text in BENCHES.items():
        (root / name).write_text(text)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "benches")
    git = GitRepo(root)
    store = root.parent / "store"
    environment = Environment(builder="docker", docker=DockerOptions(base_image=BASE_IMAGE))
    builder = make_builder("docker", vcs=git, environment=environment, store=store)
    commit = git.resolve("HEAD")
    with Checkouts(git, store) as checkouts:
        built = builder.prepare(commit, checkouts.get(commit))
        yield builder, built, store
    builder.close()
    git.close()


def _trial(built: BuiltEnv, store: Path, script: str, timeout_s: float = 60) -> Any:
    runner = TrialRunner(store / "runs" / script, timeout_s=timeout_s, grace_s=1)
    return runner.trial(built.command(["python", script]), cwd=built.checkout, env=built.environ(),
                        launcher=built.launcher)


def test_success_runs_without_network_and_leaves_no_container(tiny: tuple[EnvBuilder, BuiltEnv, Path]) -> None:
    """A trial runs in a container with only loopback, and the container is removed."""
    _, built, store = tiny
    result = _trial(built, store, "ok.py")
    assert result.status is TrialStatus.OK, result.stderr_path.read_text()
    assert result.meta["_ifaces"] == ["lo"]
    assert bisector_containers() == []


def test_failure_leaves_no_container(tiny: tuple[EnvBuilder, BuiltEnv, Path]) -> None:
    """A benchmark exiting 1 is a failed trial with its stderr kept, and no container remains."""
    _, built, store = tiny
    result = _trial(built, store, "fail.py")
    assert result.status is TrialStatus.FAILED and result.exit_code == 1
    assert "boom" in result.stderr_path.read_text()
    assert bisector_containers() == []


def test_timeout_kills_and_removes_the_container(tiny: tuple[EnvBuilder, BuiltEnv, Path]) -> None:
    """A trial past its timeout is killed, reported as timed out, and its container removed."""
    _, built, store = tiny
    result = _trial(built, store, "sleep.py", timeout_s=2)
    assert result.status is TrialStatus.FAILED and result.timed_out
    assert result.duration_s < 30
    assert bisector_containers() == []


def test_interruption_removes_the_container(tiny: tuple[EnvBuilder, BuiltEnv, Path]) -> None:
    """Ctrl-C (SIGINT) in the middle of a trial propagates and still removes the container."""
    _, built, store = tiny
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(3.0, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _trial(built, store, "sleep.py", timeout_s=60)
    finally:
        timer.cancel()
    assert bisector_containers() == []


def test_runtime_facts_and_packages_come_from_the_image(tiny: tuple[EnvBuilder, BuiltEnv, Path]) -> None:
    """The BuiltEnv carries the image's Python version and pip list, not the host's."""
    _, built, _ = tiny
    assert built.runtime is not None and built.runtime.python_version.startswith("3.11")
    assert any(name == "pip" for name, _ in built.packages)
    assert built.environ().get("PATH", "").startswith("/opt/bisector-env/bin")


def test_unreachable_daemon_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """With DOCKER_HOST naming no daemon, connecting fails with a hint to start it or set DOCKER_HOST."""
    from bisector.builders.docker_run import connect

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerError) as info:
        connect()
    assert "no Docker daemon reachable" in str(info.value)
    assert info.value.hint is not None and "DOCKER_HOST" in info.value.hint


def test_missing_base_image_without_registry_is_a_clear_error(tmp_path: Path) -> None:
    """A base image that is neither local nor pullable stops the run with a DockerError."""
    docker_or_skip()
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "ok.py").write_text(BENCHES["ok.py"])
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "one")
    git = GitRepo(root)
    environment = Environment(builder="docker", docker=DockerOptions(base_image="bisector-no-such-base:0"))
    builder = make_builder("docker", vcs=git, environment=environment, store=tmp_path / "store")
    commit = git.resolve("HEAD")
    try:
        with Checkouts(git, tmp_path / "store") as checkouts, pytest.raises(DockerError) as info:
            builder.prepare(commit, checkouts.get(commit))
        assert "bisector-no-such-base:0" in str(info.value) and info.value.hint
    finally:
        builder.close()
        git.close()


def test_docker_bisection_names_the_dependency_culprit_and_shares_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --builder docker` names the pin-upgrade commit, building one image per distinct pin set."""
    docker_or_skip()
    from bisector.builders.docker_env import DockerBuilder
    from bisector.pipeline import RunRequest, run_bisection

    builds: list[str] = []
    original = DockerBuilder._build

    def counting(self: DockerBuilder, key: str, *args: Any) -> Any:
        builds.append(key)
        return original(self, key, *args)

    monkeypatch.setattr(DockerBuilder, "_build", counting)
    sample = build_sample_repo(tmp_path / "repo", SampleSpec(kind="dependency", builder="docker",
                                                             n_commits=12, culprit=7))
    doc = yaml.safe_load((sample.path / "bisector.yaml").read_text())
    doc["environment"]["docker"] = {"base_image": BASE_IMAGE}
    config = tmp_path / "bisector-docker.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))

    outcome = run_bisection(RunRequest(good=sample.commits[0], bad=sample.commits[-1], repo=sample.path,
                                       config=config, builder="docker", metric="latency_ms"))
    result = outcome.document
    assert result["status"] == "found", result
    assert result["culprit"]["commit"] in (sample.culprit, sample.culprit_first_parent)

    measured = {sample.commits[0], sample.commits[-1], *(s["commit"] for s in result["steps"])}
    pins = {subprocess.run(["git", "-C", str(sample.path), "show", f"{sha}:requirements.txt"],  # noqa: S603, S607
                           check=True, capture_output=True, text=True).stdout for sha in measured}
    # Commits that share pins share one image (isolation then builds its own states' images).
    with sqlite3.connect(sample.path / ".bisector" / "journal.sqlite") as db:
        keys = {k for sha, k in db.execute("SELECT commit_sha, env_key FROM trials") if sha in measured}
    assert len(keys) == len(pins) < len(measured)
    assert keys <= set(builds) and len(builds) == len(set(builds))
    assert bisector_containers() == []


def test_cache_list_and_prune_remove_images_beyond_keep(tiny: tuple[EnvBuilder, BuiltEnv, Path]) -> None:
    """`cache list` shows the store's image; `cache prune --keep 0` removes it from the daemon."""
    from bisector.builders.cachecmd import list_cache, prune_cache
    from bisector.config import Benchmark, Config, Metric, Snapshots
    from bisector.types import Direction

    _, built, store = tiny
    repo = store.parent / "repo"
    cfg = Config(benchmark=Benchmark(command=["python", "ok.py"]),
                 metrics={"value": Metric(direction=Direction.LOWER)},
                 environment=Environment(builder="docker", docker=DockerOptions(base_image=BASE_IMAGE)),
                 snapshots=Snapshots(store="../store"))
    entries = [e for e in list_cache(repo, cfg) if e.in_store]
    assert [e.key for e in entries] == [built.env_key]
    assert prune_cache(repo, cfg, keep=0) == [f"bisector-env:{built.env_key}"]
    client = docker_or_skip()
    assert client.images.list(name="bisector-env", filters={"label": f"bisector.key={built.env_key}"}) == []
