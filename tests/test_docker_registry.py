"""`environment.docker.registry` without Ray: what the setting accepts, and a registry
that does not answer (the image is built here, the failed push is noted).

The registry's round trip between two nodes (push, then pull instead of build) is in
tests/test_ray_docker.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bisector.config import DockerOptions
from bisector.testing import gitutil
from tests.docker_support import BASE_IMAGE, docker_or_skip

from .conftest import run_cli, tree_digest


def _records(store: Path) -> list[dict[str, Any]]:
    """The builder's record of the images it obtained (built or pulled)."""
    path = store / "logs" / "build" / "images.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.docker
@pytest.mark.slow
def test_an_unreachable_registry_means_building_and_a_warning(tmp_path: Path) -> None:
    """With a registry that does not answer, the image is built here (the pull failed), the
    failed push is noted, and the environment is still ready for trials."""
    from bisector.builders.registry import make_builder
    from bisector.config import Environment
    from bisector.engine.checkouts import Checkouts
    from bisector.gitrepo import GitRepo
    from bisector.testing.raycluster import free_port

    docker_or_skip()
    root = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(root, {"bench.py": "print(1)\n"}, "one")
    git, store = GitRepo(root), tmp_path / "store"
    closed = f"127.0.0.1:{free_port()}/bisector"  # nothing listens there
    options = DockerOptions(base_image=BASE_IMAGE, registry=closed)
    builder = make_builder("docker", vcs=git, environment=Environment(docker=options), store=store)
    try:
        commit = git.resolve("HEAD")
        with Checkouts(git, store) as checkouts:
            built = builder.prepare(commit, checkouts.get(commit))
        assert built.launcher is not None
        [entry] = _records(store)
        assert (entry["key"], entry["how"], entry["pushed"]) == (built.env_key, "built", False)
        log = (store / "logs" / "build" / f"{built.env_key}.log").read_text()
        assert f"# pull {closed}/bisector-env:{built.env_key}: not pulled" in log
        assert f"# push {closed}/bisector-env:{built.env_key} failed" in log
    finally:
        builder.close()
        git.close()


@pytest.mark.parametrize(
    "value",
    ["http://127.0.0.1:5000/b", "user:pw@registry.example.org/b", "-x", "a b", "Host/Upper", ""],
)
def test_a_registry_that_is_not_an_image_prefix_is_refused(value: str) -> None:
    """environment.docker.registry refuses a scheme, a login, a leading '-', whitespace and a
    path docker would not take, without echoing a password."""
    with pytest.raises(ValidationError) as info:
        DockerOptions(registry=value)
    message = info.value.errors()[0]["msg"]  # what `config check` says (the loader's line)
    assert "registry" in message or "HOST[:PORT]/PATH" in message
    assert "pw" not in message  # a login is never echoed
    assert DockerOptions(registry="127.0.0.1:5000/bisector").registry == "127.0.0.1:5000/bisector"


def test_a_registry_with_a_login_stops_the_run_before_anything_is_written(tmp_path: Path) -> None:
    """`run` with a registry holding a password: one `error:` line naming the key, exit 2,
    the password never printed, nothing written in the repository."""
    repo = gitutil.make_repo(tmp_path / "repo")
    gitutil.commit(repo, {"bench.py": "print(1)\n"}, "one", tag="good")
    gitutil.commit(repo, {"bench.py": "print(2)\n"}, "two", tag="bad")
    config = tmp_path / "b.yaml"
    config.write_text(
        "benchmark: {command: [python, bench.py]}\n"
        "metrics: {x: {direction: lower}}\n"
        "environment:\n  builder: docker\n  docker: {registry: 'me:s3cret@registry.example.org/b'}\n"
    )
    before = tree_digest(repo)
    proc = run_cli(
        "run", "--repo", str(repo), "--config", str(config), "--good", "good", "--bad", "bad"
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "environment.docker.registry" in errors[0], proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout
    assert tree_digest(repo) == before
