"""Shared fixtures: sample repositories built with real git in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bisector.testing.raycluster import RayHead
from bisector.testing.sample import SampleRepo, SampleSpec, build_sample_repo

ROOT = Path(__file__).resolve().parents[1]

#: bisector.yaml for a small repository whose `bench.py` prints latency_ms (python on PATH).
BENCH_PY_CONFIG = """\
benchmark:
  command: [python, bench.py]
  repeats: {min: 3, max: 6}
metrics:
  latency_ms: {direction: lower, threshold: 5%}
"""


@pytest.fixture
def make_sample(tmp_path: Path) -> Callable[..., SampleRepo]:
    """Build a sample serving repository (see bisector.testing.sample) under tmp_path."""

    def make(name: str = "repo", **spec: object) -> SampleRepo:
        return build_sample_repo(tmp_path / name, SampleSpec(**spec))  # type: ignore[arg-type]

    return make


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `python -m bisector ARGS` in a fresh process, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bisector", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tree_digest(path: Path) -> dict[str, bytes]:
    """Every file under `path` with its bytes (to prove a command changed nothing)."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def _remove_docker_images_made_by_tests() -> Iterator[None]:
    """Images labelled `bisector` that this test session created are removed at its end."""
    started = time.time()
    yield
    from tests.docker_support import remove_images_since

    remove_images_since(started)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A Ray head with 4 CPUs, 2 fake GPUs and two fake node types (custom resources), one
    for the session: every test file that runs on Ray shares it (`ray start` is slow)."""
    pytest.importorskip("ray")
    head = RayHead.start(
        tmp_path_factory.mktemp("rayhead"),
        num_cpus=4,
        num_gpus=2,
        resources={"type_a": 8, "type_b": 8},
    )
    yield head
    head.stop()


def repo_with_environment(tmp_path: Path, environment: str, *, second: bool = False) -> Path:
    """A repository whose bench.py prints t, its bisector.yaml's `environment:` set to
    `environment` (YAML flow text), requirements.txt pinning x==1; `second`: a second
    commit pinning x==2."""
    from bisector.testing import gitutil

    repo = gitutil.make_repo(tmp_path / "repo")
    config = (
        "benchmark:\n  command: [python, bench.py]\n  repeats: {min: 3, max: 5}\n"
        f"metrics:\n  t: {{direction: lower}}\nenvironment: {environment}\n"
    )
    bench = 'import json\nprint(json.dumps({"t": 1.0}))\n'
    files = {"bench.py": bench, "bisector.yaml": config, "requirements.txt": "x==1\n"}
    gitutil.commit(repo, files, "first")
    if second:
        gitutil.commit(repo, {"requirements.txt": "x==2\n"}, "second")
    return repo
