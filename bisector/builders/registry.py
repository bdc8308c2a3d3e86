"""The builder table: each environment builder by the name `environment.builder` gives.

`docker` is imported on first use, so the docker SDK is only loaded when it is chosen.
A builder connects to what it builds with (the Docker daemon) only when it first builds or
runs; `require_here` checks it up front where trials build and run on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bisector.builders.base import EnvBuilder
from bisector.builders.local import LocalBuilder
from bisector.builders.venv import VenvBuilder
from bisector.config import Environment
from bisector.errors import ConfigError
from bisector.ports import Vcs

__all__ = [
    "BUILDERS",
    "BuilderFactory",
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
