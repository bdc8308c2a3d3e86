"""The docker builder on the ray executor: a real Ray head on 127.0.0.1, the real dockerd,
the local base image, and a real registry (Debian's `docker-registry`) on 127.0.0.1.

Images are built once per key on the node (its builder's record, `images.jsonl`, and the
daemon's image list say so), pulled from `environment.docker.registry` instead of built
when another node pushed them, and no trial container outlives its worker or its driver.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bisector.testing import gitutil
from bisector.testing.raycluster import RayHead, wheel_repo
from tests.docker_support import BASE_IMAGE, docker_or_skip
from tests.registry_support import REGISTRY_BINARY, LocalRegistry

from .conftest import ROOT, run_cli

N, CULPRIT = 6, 4
NO_DAEMON = "unix:///nonexistent/docker.sock"  # a DOCKER_HOST that reaches no daemon

# Runs as nobody in a container with only loopback: says so in its metadata.
BENCH = """\
import json, os, random, socket, time
import speedpkg
time.sleep(float(os.environ.get("SLEEP_S", "0.2")))
rng = random.Random()
print(json.dumps({"latency_ms": [speedpkg.LEVEL * (1 + rng.gauss(0, 0.003)) for _ in range(5)],
                  "_uid": os.getuid(), "_ifaces": [n for _, n in socket.if_nameindex()]}))
"""


def _repo(path: Path, wheels: Path, n: int = N, culprit: int = CULPRIT) -> Path:
    """Commits 0..n-1 pinning `speedpkg` 1.0.0 (level 20) before `culprit`, 1.1.0 (26) from it."""
    return wheel_repo(path, wheels, n, culprit, bench=BENCH)


def _config(
    path: Path, head: RayHead, wheels: Path, cache: Path, registry: str | None = None
) -> Path:
    docker: dict[str, str] = {"base_image": BASE_IMAGE}
    if registry:
        docker["registry"] = registry
    cfg = {
        "benchmark": {
            "command": ["python", "bench.py"],
            "timeout": "120s",
            "repeats": {"min": 3, "max": 8},
            "env": {"SLEEP_S": "0.05"},
        },
        "metrics": {"latency_ms": {"direction": "lower"}},
        "environment": {
            "builder": "docker",
            "requirements": ["requirements.txt"],
            "find_links": [str(wheels)],
            "no_index": True,
            "docker": docker,
        },
        "execution": {
            "executor": "ray",
            "workers": 2,
            "ray": {
                "address": head.address,
                "resources_per_trial": {"num_cpus": 1},
                "cache_dir": str(cache),
            },
        },
    }
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def _argv(repo: Path, config: Path) -> list[str]:
    return ["run", "--repo", str(repo), "--config", str(config), "--good", "good", "--bad", "bad"]


def _bisect(repo: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [*_argv(repo, config), "--json", "--executor", "ray", "--builder", "docker", *extra]
    return run_cli(*argv, timeout=400)


def _culprit_index(proc: subprocess.CompletedProcess[str], repo: Path) -> int:
    assert proc.returncode == 0, proc.stderr[-3000:]
    sha = json.loads(proc.stdout)["culprit"]["commit"]
    return int(gitutil.git(repo, "show", f"{sha}:commit.txt"))


def _trials(repo: Path) -> list[tuple[str, dict[str, Any]]]:
    """(environment key, meta) of every journaled trial."""
    with sqlite3.connect(repo / ".bisector" / "journal.sqlite") as db:
        rows = db.execute("SELECT env_key, meta FROM trials ORDER BY id").fetchall()
    return [(key, json.loads(meta)) for key, meta in rows]


def _records(cache: Path) -> list[dict[str, Any]]:
    """The node's builder record: one line per image it obtained (built or pulled)."""
    path = cache / "store" / "logs" / "build" / "images.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _trial_containers(client: Any) -> list[str]:
    found = client.containers.list(all=True, filters={"name": "bisector-trial-"})
    return [c.name for c in found]


@dataclass
class FirstRun:
    """A K = 2 docker bisection on the workers, pushing to `registry` when there is one."""

    folder: Path
    repo: Path
    cache: Path
    proc: subprocess.CompletedProcess[str]
    registry: LocalRegistry | None


@pytest.fixture(scope="module")
def first_run(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """One bisection shared by the module's Ray tests (~45 s on two cores), its node cache
    then holding both keys' images: with a real registry when this machine has the
    `docker-registry` binary (the registry test then has something to pull), else without."""
    pytest.importorskip("ray")
    docker_or_skip()
    folder = tmp_path_factory.mktemp("first")
    registry = LocalRegistry.start(folder / "registry") if LocalRegistry.available() else None
    try:
        prefix = f"{registry.address}/bisector" if registry else None
        repo = _repo(folder / "repo", folder / "wheels")
        config = _config(folder / "b.yaml", ray_head, folder / "wheels", folder / "cache", prefix)
        yield FirstRun(folder, repo, folder / "cache", _bisect(repo, config), registry)
    finally:
        if registry is not None:
            registry.stop()


@pytest.mark.ray
@pytest.mark.docker
@pytest.mark.slow
def test_docker_builder_on_workers_builds_each_key_once_per_node(first_run: FirstRun) -> None:
    """`--executor ray --workers 2 --builder docker` names the pin-upgrade commit; each
    environment key's image is built once on the node and every trial runs in a container."""
    client = docker_or_skip()
    repo, cache = first_run.repo, first_run.cache
    assert _culprit_index(first_run.proc, repo) == CULPRIT
    trials = _trials(repo)
    keys = {key for key, _meta in trials}
    assert len(keys) == 2 and len(trials) > len(keys)
    # The node's builder built each key once (its record), and the images are on the daemon.
    records = _records(cache)
    assert sorted(r["key"] for r in records) == sorted(keys), records
    assert all(r["how"] == "built" for r in records)
    tags = {t for image in client.images.list(name="bisector-env") for t in image.tags}
    assert {f"bisector-env:{k}" for k in keys} <= tags
    assert not _records(repo / ".bisector")  # the driver only computed the keys
    # Every trial ran locked in a container (nobody, loopback only), none is left.
    assert {(m["_uid"], tuple(m["_ifaces"])) for _k, m in trials} == {(65534, ("lo",))}
    assert _trial_containers(client) == []


@pytest.mark.ray
@pytest.mark.docker
@pytest.mark.slow
def test_the_driver_needs_no_docker_daemon(
    ray_head: RayHead, first_run: FirstRun, tmp_path: Path
) -> None:
    """A driver whose DOCKER_HOST names no daemon bisects with the docker builder: it only
    computes the keys (the same as the workers' images'), the workers build and run on theirs."""
    client = docker_or_skip()
    wheels, cache = first_run.folder / "wheels", first_run.cache
    built_before = _records(cache)
    repo = _repo(tmp_path / "repo", wheels, n=3, culprit=2)
    config = _config(tmp_path / "b.yaml", ray_head, wheels, cache)  # the images are there
    argv = [*_argv(repo, config), "--json", "--executor", "ray", "--builder", "docker"]
    # Only the driver's environment: the head's workers were started with the normal one.
    driver_env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": NO_DAEMON}
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", *argv],
        env=driver_env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert _culprit_index(proc, repo) == 2
    keys = {key for key, _meta in _trials(repo)}
    assert keys == {key for key, _meta in _trials(first_run.repo)}  # both pins' images
    assert _records(cache) == built_before  # reused on the node: nothing built again
    assert not _records(repo / ".bisector")  # the driver built nothing
    assert _trial_containers(client) == []


@pytest.mark.ray
@pytest.mark.docker
@pytest.mark.slow
def test_images_pushed_by_one_node_are_pulled_by_the_next(
    ray_head: RayHead, first_run: FirstRun, tmp_path: Path
) -> None:
    """With environment.docker.registry, a node builds and pushes each key's image; a node
    without the images (fresh cache, images removed) pulls them instead of building."""
    client = docker_or_skip()
    registry = first_run.registry
    if registry is None:
        pytest.skip(f"no {REGISTRY_BINARY} (apt-get install docker-registry)")
    keys = {key for key, _meta in _trials(first_run.repo)}
    built = _records(first_run.cache)
    assert sorted(r["key"] for r in built) == sorted(keys)
    assert all(r["how"] == "built" and r["pushed"] for r in built), built
    assert set(registry.tags("bisector/bisector-env")) == keys
    # Another node: none of the images, an empty cache folder (and a small range: both keys).
    for key in keys:
        client.images.remove(f"bisector-env:{key}", force=True)
    wheels, cache = first_run.folder / "wheels", tmp_path / "cache"
    repo = _repo(tmp_path / "repo", wheels, n=2, culprit=1)
    config = _config(tmp_path / "b.yaml", ray_head, wheels, cache, f"{registry.address}/bisector")
    proc = _bisect(repo, config)
    assert _culprit_index(proc, repo) == 1
    assert {key for key, _meta in _trials(repo)} == keys
    pulled = _records(cache)
    assert sorted(r["key"] for r in pulled) == sorted(keys)
    assert all(r["how"] == "pulled" and not r["pushed"] for r in pulled), pulled
    log = (cache / "store" / "logs" / "build" / f"{sorted(keys)[0]}.log").read_text()
    assert "# pulled " in log and "docker build" not in log
    # Only bisector's own name stays on the daemon, not the registry's.
    tags = {t for image in client.images.list() for t in image.tags}
    assert not [t for t in tags if t.startswith(registry.address)]


@pytest.mark.ray
@pytest.mark.docker
@pytest.mark.slow
def test_a_killed_driver_leaves_no_trial_container(
    ray_head: RayHead, first_run: FirstRun, tmp_path: Path
) -> None:
    """Killing the driver while trials run in containers on the workers leaves no container:
    Ray ends the orphaned tasks' workers and their watchdogs remove the containers."""
    client = docker_or_skip()
    # The first run's node cache: its images are there already (nothing to build).
    wheels, cache = first_run.folder / "wheels", first_run.cache
    repo = _repo(tmp_path / "repo", wheels, n=4, culprit=2)
    config = _config(tmp_path / "b.yaml", ray_head, wheels, cache)
    cfg = json.loads(config.read_text())
    cfg["benchmark"]["env"]["SLEEP_S"] = "300"  # every trial hangs until it is ended
    config.write_text(json.dumps(cfg))
    driver = subprocess.Popen(
        [sys.executable, "-m", "bisector", *_argv(repo, config)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            running = client.containers.list(filters={"name": "bisector-trial-"})
            if len(running) >= 2:
                break
            time.sleep(0.5)
        assert driver.poll() is None, "the run ended before it could be killed"
        assert len(running) >= 2, "no two trial containers ran"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 60
    while _trial_containers(client) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _trial_containers(client) == []


@pytest.mark.ray
@pytest.mark.docker
@pytest.mark.slow
def test_an_interrupted_trial_removes_its_container(first_run: FirstRun) -> None:
    """A trial interrupted as `ray.cancel` does (KeyboardInterrupt in the worker) removes its
    container and its watchdog before the interrupt leaves the task."""
    from bisector.executors.archive import commit_archive
    from bisector.executors.ray_task import run_trial_task

    client = docker_or_skip()
    cfg = json.loads((first_run.folder / "b.yaml").read_text())
    sha = gitutil.git(first_run.repo, "rev-parse", "good").strip()
    spec = {
        "sha": sha,
        "checkout_id": sha,
        "builder": "docker",
        "environment": cfg["environment"],
        "command": cfg["benchmark"]["command"],
        "env": {"SLEEP_S": "300"},
        "timeout_s": 120.0,
        "cache_dir": str(first_run.cache),  # the image is there: nothing to build
        "node_type": None,
    }
    main = threading.main_thread().ident
    assert main is not None
    seen: list[str] = []

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            seen.extend(c.name for c in client.containers.list(filters={"name": "bisector-trial-"}))
            time.sleep(0.2)
        signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(target=interrupt_once_running, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_trial_task(spec, commit_archive(first_run.repo, sha))
    finally:
        watcher.join()
        signal.signal(signal.SIGINT, previous)
    assert seen, "no trial container ran"
    assert _trial_containers(client) == []
    token = seen[0].removeprefix("bisector-trial-")
    time.sleep(0.3)
    watchdogs = subprocess.run(
        ["pgrep", "-f", f"bisector.executors.watchdog.*{token}"], capture_output=True
    )
    assert watchdogs.stdout == b""


@pytest.mark.docker
def test_the_watchdog_removes_the_container_of_a_dead_worker() -> None:
    """When the worker process dies, its watchdog (detached: not the worker's child, which a
    Ray worker kills as it exits) removes the trial's container by name."""
    from bisector.executors.watchdog import spawn, stop

    client = docker_or_skip()
    token = os.urandom(6).hex()
    name = f"bisector-trial-{token}"
    container = client.containers.run(
        BASE_IMAGE, ["sleep", "120"], name=name, labels={"bisector": "1"}, detach=True
    )
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    watchdog = spawn(worker.pid, token, name)
    try:
        ppid = int(Path(f"/proc/{watchdog}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid != os.getpid()  # not our child: it outlives our exit
        time.sleep(0.5)
        assert container.name in _trial_containers(client)  # kept while the worker lives
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 30
        while name in _trial_containers(client) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert name not in _trial_containers(client)
    finally:
        worker.kill()
        stop(watchdog)
        if name in _trial_containers(client):
            client.api.remove_container(name, force=True)


def test_a_bisector_error_on_a_worker_is_said_with_its_hint() -> None:
    """A DockerError raised on a worker (no daemon there) reaches the driver as that error
    with its hint, not as a bug report; any other exception stays a bug report."""
    ray_exceptions = pytest.importorskip("ray.exceptions")
    from bisector.core.types import Commit
    from bisector.errors import DockerError
    from bisector.executors.task_errors import task_failed

    commit = Commit("a" * 40, "", "", "")
    cause = DockerError("no Docker daemon reachable (refused)", hint="start the daemon")
    error = task_failed(ray_exceptions.RayTaskError("run_trial_task", "tb", cause), commit)
    assert "no Docker daemon reachable" in error.message and error.hint == "start the daemon"
    bug = task_failed(ray_exceptions.RayTaskError("run_trial_task", "tb", KeyError("x")), commit)
    assert bug.hint is not None and "same bisector" in bug.hint
