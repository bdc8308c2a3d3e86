"""The builder table: each environment builder by the name `environment.builder` gives.

`docker` is imported on first use, so the docker SDK is only loaded when it is chosen.
A builder connects to what it builds with (the Docker daemon) only when it first builds or
runs; `require_here` checks it up front where trials build and run on this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from bisector.builders.base import EnvBuilder
from bisector.builders.local import LocalBuilder
from bisector.builders.venv import VenvBuilder
from bisector.config import Environment
from bisector.errors import ConfigError
from bisector.ports import Vcs

__all__ = [
    "BUILDERS",
    "BuilderFactory",
    "check_builder_settings",
    "isolates_dependencies",
    "make_builder",
    "require_here",
]


class BuilderFactory(Protocol):
    def __call__(
        self, vcs: Vcs, environment: Environment, store: Path, *, max_workers: int = 2
    ) -> EnvBuilder: ...


def _docker(vcs: Vcs, environment: Environment, store: Path, *, max_workers: int = 2) -> EnvBuilder:
    from bisector.builders.docker_env import DockerBuilder

    return DockerBuilder(vcs, environment, store, max_workers=max_workers)


BUILDERS: dict[str, BuilderFactory] = {
    LocalBuilder.name: LocalBuilder,
    VenvBuilder.name: VenvBuilder,
    "docker": _docker,
}


def _index_urls(environment: Environment) -> Iterator[tuple[str, str]]:
    """(key, URL) of every package source that is a URL (`find_links` folders are not)."""
    if environment.index_url:
        yield "index_url", environment.index_url
    for i, url in enumerate(environment.extra_index_urls):
        yield f"extra_index_urls[{i}]", url
    for i, link in enumerate(environment.find_links):
        if "://" in link:
            yield f"find_links[{i}]", link


def check_builder_settings(name: str, environment: Environment) -> None:
    """Refuse what builder `name` cannot do safely, before anything is built or written.

    The docker builder writes pip's index options into each environment image (a `RUN`
    line of its Dockerfile, which `docker history` shows to whoever has the image, and
    `environment.docker.registry` pushes it to other machines): an index or find-links
    URL with a user name or password is refused there. The venv builder writes no image
    and scrubs its logs, so it takes them.

    :raises ConfigError: names the key, never the URL (it holds the secret).
    """
    if name != "docker":
        return
    for key, url in _index_urls(environment):
        if "@" in urlsplit(url).netloc:
            raise ConfigError(
                f"environment.{key} holds a user name or password, which the docker builder "
                "would write into the image (its history shows the pip command, and "
                "environment.docker.registry pushes it); nothing was built",
                hint="give the docker builder an index it reaches without credentials (on "
                "environment.docker.network), or download the wheels into a find_links folder "
                "(copied into the build); or use --builder venv",
            )


def make_builder(
    name: str, *, vcs: Vcs, environment: Environment, store: Path, jobs: int | None = None
) -> EnvBuilder:
    """The builder called `name` for this repository, config and store.

    `jobs`: environments built in parallel in the background (`run --jobs`); None keeps
    the builder's default. The local builder builds nothing and ignores it.
    """
    try:
        factory = BUILDERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown builder {name!r}", hint=f"available builders: {', '.join(sorted(BUILDERS))}"
        ) from None
    check_builder_settings(name, environment)
    if jobs is None:
        return factory(vcs, environment, store)
    return factory(vcs, environment, store, max_workers=max(1, jobs))


def isolates_dependencies(name: str) -> bool:
    """Whether builder `name` installs each state's own dependencies (venv, docker); the
    local builder runs everything in this Python's packages. Unknown names say True: they
    are refused where the builder is made."""
    return bool(getattr(BUILDERS.get(name), "isolates_dependencies", True))


def require_here(name: str) -> None:
    """Check that builder `name` can build and run on this machine, before a run writes
    anything (the local executor; the ray executor's driver only computes keys).

    :raises DockerError: `docker` with no reachable daemon (or no access to its socket).
    """
    if name == "docker":
        from bisector.builders.docker_run import connect

        connect().close()
