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

from bisector.builders.base import BuiltEnv, EnvBuilder
from bisector.builders.registry import make_builder
from bisector.config import DockerOptions, Environment
from bisector.engine.checkouts import Checkouts
from bisector.engine.runner import TrialRunner
from bisector.errors import DockerError
from bisector.gitrepo import GitRepo
from bisector.ports import TrialStatus
from bisector.testing import gitutil
from bisector.testing.sample import SampleSpec, build_sample_repo
from tests.docker_support import BASE_IMAGE, bisector_containers, docker_or_skip

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
    root = gitutil.make_repo(tmp_path_factory.mktemp("tiny") / "repo")
    gitutil.commit(root, BENCHES, "benches")
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
    return runner.trial(
        built.command(["python", script]),
        cwd=built.checkout,
        env=built.environ(),
        launcher=built.launcher,
    )


def test_success_runs_without_network_and_leaves_no_container(
    tiny: tuple[EnvBuilder, BuiltEnv, Path],
) -> None:
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
    assert result.duration_s < 120 / 4  # ended by the kill, long before sleep.py's 120 s
    assert bisector_containers() == []


def test_interruption_removes_the_container(tiny: tuple[EnvBuilder, BuiltEnv, Path]) -> None:
    """Ctrl-C (SIGINT) in the middle of a trial propagates and still removes the container."""
    _, built, store = tiny
    main = threading.main_thread().ident
    assert main is not None
    # Ctrl-C must raise KeyboardInterrupt here, whatever handler an earlier test in this
    # process left for SIGINT (in a full run one did, and the trial ran to its timeout).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(3.0, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _trial(built, store, "sleep.py", timeout_s=60)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert bisector_containers() == []


def test_runtime_facts_and_packages_come_from_the_image(
    tiny: tuple[EnvBuilder, BuiltEnv, Path],
) -> None:
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


def test_the_key_needs_no_daemon_and_is_the_built_images_key(
    tiny: tuple[EnvBuilder, BuiltEnv, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DOCKER_HOST naming no daemon the builder still computes the environment key, the
    same as the image's built through the real daemon; only building reaches for the daemon."""
    _, built, store = tiny
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    git = GitRepo(store.parent / "repo")
    environment = Environment(builder="docker", docker=DockerOptions(base_image=BASE_IMAGE))
    builder = make_builder("docker", vcs=git, environment=environment, store=tmp_path / "store")
    try:
        commit = git.resolve("HEAD")
        assert builder.env_key(commit) == built.env_key
        with Checkouts(git, tmp_path / "store") as checkouts, pytest.raises(DockerError) as info:
            builder.prepare(commit, checkouts.get(commit))
        assert "no Docker daemon reachable" in str(info.value)
        assert info.value.hint is not None and "DOCKER_HOST" in info.value.hint
    finally:
        builder.close()  # never connected: nothing to sweep, and no error for it
        git.close()


def test_missing_base_image_without_registry_is_a_clear_error(tmp_path: Path) -> None:
    """A base image that is neither local nor pullable stops the run with a DockerError."""
    docker_or_skip()
    root = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(root, {"ok.py": BENCHES["ok.py"]}, "one")
    git = GitRepo(root)
    environment = Environment(
        builder="docker", docker=DockerOptions(base_image="bisector-no-such-base:0")
    )
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
    from bisector.engine.pipeline import RunRequest, run_bisection

    builds: list[str] = []
    original = DockerBuilder._build

    def counting(self: DockerBuilder, key: str, *args: Any) -> Any:
        builds.append(key)
        return original(self, key, *args)

    monkeypatch.setattr(DockerBuilder, "_build", counting)
    sample = build_sample_repo(
        tmp_path / "repo", SampleSpec(kind="dependency", builder="docker", n_commits=12, culprit=7)
    )
    doc = yaml.safe_load((sample.path / "bisector.yaml").read_text())
    doc["environment"]["docker"] = {"base_image": BASE_IMAGE}
    config = tmp_path / "bisector-docker.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))

    outcome = run_bisection(
        RunRequest(
            good=sample.commits[0],
            bad=sample.commits[-1],
            repo=sample.path,
            config=config,
            builder="docker",
            metric="latency_ms",
        )
    )
    result = outcome.document.to_json()
    assert result["status"] == "found", result
    assert result["culprit"]["commit"] in (sample.culprit, sample.culprit_first_parent)

    measured = {sample.commits[0], sample.commits[-1], *(s["commit"] for s in result["steps"])}
    pins = {
        subprocess.run(
            ["git", "-C", str(sample.path), "show", f"{sha}:requirements.txt"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for sha in measured
    }
    # Commits that share pins share one image (isolation then builds its own states' images).
    with sqlite3.connect(sample.path / ".bisector" / "journal.sqlite") as db:
        keys = {
            k for sha, k in db.execute("SELECT commit_sha, env_key FROM trials") if sha in measured
        }
    assert len(keys) == len(pins) < len(measured)
    assert keys <= set(builds) and len(builds) == len(set(builds))
    assert bisector_containers() == []


def test_cache_list_and_prune_remove_images_beyond_keep(
    tiny: tuple[EnvBuilder, BuiltEnv, Path],
) -> None:
    """`cache list` shows the store's image; `cache prune --keep 0` removes it from the daemon."""
    from bisector.builders.cachecmd import list_cache, prune_cache
    from bisector.config import Benchmark, Config, Metric, Snapshots
    from bisector.core.types import Direction

    _, built, store = tiny
    repo = store.parent / "repo"
    cfg = Config(
        benchmark=Benchmark(command=["python", "ok.py"]),
        metrics={"value": Metric(direction=Direction.LOWER)},
        environment=Environment(builder="docker", docker=DockerOptions(base_image=BASE_IMAGE)),
        snapshots=Snapshots(store="../store"),
    )
    entries = [e for e in list_cache(repo, cfg) if e.in_store]
    assert [e.key for e in entries] == [built.env_key]
    assert prune_cache(repo, cfg, keep=0) == [f"bisector-env:{built.env_key}"]
    client = docker_or_skip()
    assert (
        client.images.list(name="bisector-env", filters={"label": f"bisector.key={built.env_key}"})
        == []
    )


# -- the code layer: `install` runs in an image per commit --------------------------------

# A PEP 517 backend with no requirements, kept in the repository (`backend-path`): pip builds
# the project with build isolation and `--no-index`, offline, whatever the base image's
# venv holds (Python >= 3.12 venvs have no setuptools, and setuptools < 70.1 would also
# need `wheel`). A plain `pip install --no-deps .`, as users write it, then really builds
# and installs the commit's code. The wheel adds `_installed.py`, which only an installed
# copy has.
BACKEND = """\
import pathlib, zipfile

NAME, VERSION = "tinypkg", "0.1"


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if pathlib.Path("BROKEN").exists():
        raise RuntimeError("tinybackend: refusing to build a BROKEN tree")
    files = {f"{NAME}/{p.name}": p.read_bytes() for p in sorted(pathlib.Path("src", NAME).glob("*.py"))}
    files[f"{NAME}/_installed.py"] = b"INSTALLED = True\\n"
    info = f"{NAME}-{VERSION}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: tinybackend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{info}/RECORD"] = "".join(f"{p},,\\n" for p in [*files, f"{info}/RECORD"]).encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory, name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return name
"""
PYPROJECT = (
    '[build-system]\nrequires = []\nbuild-backend = "tinybackend"\nbackend-path = ["_build"]\n'
)
INSTALL_BENCH = """\
import json, os, tinypkg
try:
    from tinypkg import _installed
    installed = _installed.INSTALLED
except ImportError:
    installed = False
print(json.dumps({"value": tinypkg.VALUE, "_file": tinypkg.__file__, "_installed": installed}))
"""


def _install_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Commits `one`, `two` (VALUE 1, 2; no requirements, so one env key) and `broken`."""
    root = gitutil.make_repo(tmp_path / "repo")
    files = {
        "_build/tinybackend.py": BACKEND,
        "pyproject.toml": PYPROJECT,
        "bench.py": INSTALL_BENCH,
    }
    shas: dict[str, str] = {}
    for i, name in enumerate(("one", "two", "broken")):
        files["src/tinypkg/__init__.py"] = f"VALUE = {i + 1}\n"
        if name == "broken":
            files["BROKEN"] = ""
        shas[name] = gitutil.commit(root, files, name)
    return root, shas


def test_install_builds_a_code_image_per_commit_on_one_env_image(tmp_path: Path) -> None:
    """With `install`, each commit gets its own code image on one shared dependency image, its
    benchmark imports that commit's installed package, and a failed install is a BuildError."""
    from bisector.builders.docker_env import DockerBuilder
    from bisector.builders.docker_images import prune_images
    from bisector.errors import BuildError

    client = docker_or_skip()
    root, shas = _install_repo(tmp_path)
    store = tmp_path / "store"
    environment = Environment(
        builder="docker",
        install=["pip", "install", "--no-deps", "."],
        docker=DockerOptions(base_image=BASE_IMAGE),
    )
    git = GitRepo(root)
    builder = make_builder("docker", vcs=git, environment=environment, store=store)
    assert isinstance(builder, DockerBuilder)
    try:
        with Checkouts(git, store) as checkouts:
            seen: dict[str, Any] = {}
            for name in ("one", "two"):
                commit = git.resolve(shas[name])
                built = builder.prepare(commit, checkouts.get(commit))
                result = _trial(built, store, "bench.py")
                assert result.status is TrialStatus.OK, result.stderr_path.read_text()
                seen[name] = (built.env_key, result.metrics["value"], result.meta)
            again = git.resolve(shas["one"])
            builder.prepare(again, checkouts.get(again))  # cached: not rebuilt
            key = seen["one"][0]
            assert seen["two"][0] == key
            assert [seen[n][1] for n in ("one", "two")] == [(1.0,), (2.0,)]
            for name in ("one", "two"):
                meta = seen[name][2]
                assert meta["_installed"] is True and meta["_file"].startswith(
                    "/opt/bisector-env/lib/"
                )
            assert (builder.builds_done, builder.code_builds_done) == (1, 2)

            env_layers = client.images.get(f"bisector-env:{key}").attrs["RootFS"]["Layers"]
            code_tags = [f"bisector-code:{key}-{shas[n][:12]}" for n in ("one", "two")]
            for tag in code_tags:
                image = client.images.get(tag)
                assert image.labels["bisector"] == "1"
                assert (
                    image.attrs["RootFS"]["Layers"][: len(env_layers)] == env_layers
                )  # FROM the env image

            broken = git.resolve(shas["broken"])
            with pytest.raises(BuildError) as info:
                builder.prepare(broken, checkouts.get(broken))
            log_path = info.value.log_path
            assert (
                log_path is not None and "refusing to build a BROKEN tree" in log_path.read_text()
            )
            with pytest.raises(BuildError):  # remembered for the rest of the run
                builder.prepare(broken, checkouts.get(broken))
        assert bisector_containers() == []
    finally:
        builder.close()
        git.close()
    removed = prune_images(client, store, keep=0)
    assert set(removed) == {*code_tags, f"bisector-env:{key}"}
    assert client.images.list(filters={"label": f"bisector.env={key}"}) == []


def test_code_layer_without_install_copies_the_checkout_onto_pythonpath(tmp_path: Path) -> None:
    """`docker.code: layer` without `install` runs the benchmark on the copied (not installed) tree."""
    from bisector.builders.docker_env import DockerBuilder

    docker_or_skip()
    root, shas = _install_repo(tmp_path)
    store = tmp_path / "store"
    environment = Environment(
        builder="docker", docker=DockerOptions(base_image=BASE_IMAGE, code="layer")
    )
    git = GitRepo(root)
    builder = make_builder("docker", vcs=git, environment=environment, store=store)
    assert isinstance(builder, DockerBuilder)
    try:
        with Checkouts(git, store) as checkouts:
            commit = git.resolve(shas["two"])
            built = builder.prepare(commit, checkouts.get(commit))
            result = _trial(built, store, "bench.py")
        assert result.status is TrialStatus.OK, result.stderr_path.read_text()
        assert result.metrics["value"] == (2.0,)
        assert result.meta["_file"] == "/bisector/checkout/src/tinypkg/__init__.py"
        assert result.meta["_installed"] is False
        assert builder.code_builds_done == 1
        assert bisector_containers() == []
    finally:
        builder.close()
        git.close()


def test_install_argv_is_bound_to_the_image_environment() -> None:
    """`pip`/`python -m pip` run the image env's pip with the dependency layer's index options."""
    from bisector.builders.docker_code import code_key, translate_install

    py = "/opt/bisector-env/bin/python"
    index = ["--find-links", "/bisector/links/0", "--no-index"]
    assert translate_install(["pip", "install", "--no-deps", "."], index_args=index) == [
        py,
        "-m",
        "pip",
        "install",
        "--no-deps",
        ".",
        "--no-cache-dir",
        "--disable-pip-version-check",
        *index,
    ]
    assert translate_install(["python3", "-m", "pip", "list"], index_args=index) == [
        py,
        "-m",
        "pip",
        "list",
    ]
    assert translate_install(["python", "setup.py", "develop"], index_args=index) == [
        py,
        "setup.py",
        "develop",
    ]
    assert translate_install(["make", "install"], index_args=index) == ["make", "install"]
    sha = "0123456789abcdef" * 2 + "01234567"
    assert code_key("docker-k", sha) == "docker-k-0123456789ab"
    # Isolation's synthetic states share the sha12 of their base commit, not its image.
    synthetic = code_key("docker-k", f"{sha}+iso:feed")
    assert synthetic.startswith("docker-k-0123456789ab-") and synthetic != code_key("docker-k", sha)
