"""Index credentials never go into a docker image.

The docker builder writes pip's index options into the Dockerfile of each environment
image (a `RUN [..., "--index-url", URL]` line): `docker history` shows that line to
anyone who has the image, and `environment.docker.registry` pushes the image to other
machines. So an index, extra index or find-links URL that carries a user name or
password is refused for the docker builder (exit 2) before anything is built; the venv
builder, whose logs scrub it and which writes no image, still takes it.

No Docker daemon is needed: the builder connects only when it first builds or runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bisector.builders.registry import make_builder
from bisector.config import Environment, load_config
from bisector.engine.preflight import preflight
from bisector.errors import ConfigError
from bisector.gitrepo import GitRepo
from bisector.testing import gitutil

from .conftest import repo_with_environment

SECRET = "s3cr3t-T0KEN"


def _repo(tmp_path: Path, environment: str) -> Path:
    return repo_with_environment(tmp_path, environment, second=True)


SETTINGS = [
    ("index_url", f"{{index_url: 'https://ci:{SECRET}@pypi.example.org/simple'}}"),
    (
        "extra_index_urls[1]",
        f"{{extra_index_urls: [https://a.example/simple, 'https://{SECRET}@b.example/simple']}}",
    ),
    ("find_links[0]", f"{{find_links: ['https://u:{SECRET}@wheels.example/']}}"),
]


@pytest.mark.parametrize(("key", "environment"), SETTINGS)
def test_the_docker_builder_refuses_index_credentials(
    tmp_path: Path, key: str, environment: str
) -> None:
    repo = _repo(tmp_path, environment)
    cfg = load_config(repo)
    store = tmp_path / "store"
    with GitRepo(repo) as git, pytest.raises(ConfigError) as caught:
        make_builder("docker", vcs=git, environment=cfg.environment, store=store)
    message = f"{caught.value.message} {caught.value.hint}"
    assert f"environment.{key}" in message
    assert "docker" in message and "image" in message
    assert SECRET not in message
    assert not store.exists()  # nothing was built or written


@pytest.mark.parametrize(("key", "environment"), SETTINGS)
def test_a_run_with_the_docker_builder_is_refused_before_anything_is_written(
    tmp_path: Path, key: str, environment: str
) -> None:
    repo = _repo(tmp_path, environment)
    cfg = load_config(repo)
    with GitRepo(repo) as git:
        good, bad = git.resolve("HEAD~1"), git.resolve("HEAD")
        with pytest.raises(ConfigError) as caught:
            preflight(git, cfg, "docker", good, bad)
    assert f"environment.{key}" in caught.value.message
    assert SECRET not in f"{caught.value.message} {caught.value.hint}"


def test_the_venv_builder_still_takes_index_credentials(tmp_path: Path) -> None:
    repo = _repo(tmp_path, SETTINGS[0][1])
    cfg = load_config(repo)
    with GitRepo(repo) as git:
        builder = make_builder("venv", vcs=git, environment=cfg.environment, store=tmp_path / "s")
        builder.close()
        good, bad = git.resolve("HEAD~1"), git.resolve("HEAD")
        assert preflight(git, cfg, "venv", good, bad) == []


def test_urls_without_credentials_and_local_folders_are_fine_with_docker(tmp_path: Path) -> None:
    environment = Environment(
        index_url="https://pypi.example.org/simple",
        extra_index_urls=["http://10.0.0.2:8080/simple"],
        find_links=["wheels@2024", "https://wheels.example/"],  # a folder may hold an '@'
    )
    with GitRepo(gitutil.make_repo(tmp_path / "repo")) as git:
        builder = make_builder("docker", vcs=git, environment=environment, store=tmp_path / "s")
        builder.close()
