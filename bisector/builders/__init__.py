"""Environment builders, one module per adapter, chosen by name from `BUILDERS`.

`docker` is imported on first use, so the docker SDK is only loaded when it is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bisector.builders.base import BuiltEnv, EnvBuilder, RuntimeFacts
from bisector.builders.local import LocalBuilder
from bisector.builders.venv import VenvBuilder
from bisector.config import Environment
from bisector.errors import ConfigError
from bisector.types import Vcs

__all__ = ["BUILDERS", "BuiltEnv", "EnvBuilder", "LocalBuilder", "RuntimeFacts", "VenvBuilder", "make_builder"]

BuilderFactory = Callable[[Vcs, Environment, Path], EnvBuilder]

def _docker(vcs: Vcs, environment: Environment, store: Path) -> EnvBuilder:
    from bisector.builders.docker_env import DockerBuilder

    return DockerBuilder(vcs, environment, store)


BUILDERS: dict[str, BuilderFactory] = {
    LocalBuilder.name: LocalBuilder,
    VenvBuilder.name: VenvBuilder,
    "docker": _docker,
}


def make_builder(name: str, *, vcs: Vcs, environment: Environment, store: Path) -> EnvBuilder:
    """The builder called `name` for this repository, config and store."""
    try:
        factory = BUILDERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown builder {name!r}", hint=f"available builders: {', '.join(sorted(BUILDERS))}"
        ) from None
    return factory(vcs, environment, store)
