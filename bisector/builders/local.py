"""The `local` builder: every candidate runs with the current interpreter.

Nothing is built: the candidate's code is its detached worktree (see `checkouts.py`),
put first on `PYTHONPATH` so it shadows a copy of the project installed in the current
environment (e.g. an editable install of the user's working tree). Dependencies are the
current environment's, for every commit, so all commits share one key
(`local-<python version>`). `install` is not run: it would change the user's own
environment.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import ClassVar

from bisector.builders.base import BuiltEnv, RuntimeFacts, checkout_pythonpath
from bisector.config import Environment
from bisector.core.types import Commit
from bisector.log import get_logger
from bisector.ports import Vcs

log = get_logger(__name__)


def current_runtime() -> RuntimeFacts:
    return RuntimeFacts(platform.python_version(), sys.implementation.name, platform.platform())


def current_packages() -> tuple[tuple[str, str], ...]:
    found = {
        (d.metadata["Name"], d.version) for d in metadata.distributions() if d.metadata["Name"]
    }
    return tuple(sorted(found))


class LocalBuilder:
    name: ClassVar[str] = "local"
    isolates_dependencies: ClassVar[bool] = False

    def __init__(
        self,
        vcs: Vcs,  # noqa: ARG002
        environment: Environment,
        store: Path,  # noqa: ARG002
        *,
        max_workers: int = 2,  # noqa: ARG002
    ) -> None:
        # vcs, store, max_workers: the builder table's common signature (passed by keyword);
        # the local builder reads no pins and builds nothing.
        self._environment = environment
        self._packages: tuple[tuple[str, str], ...] | None = None
        if environment.install:
            log.warning(
                "the local builder does not run `install` (it would change your environment)"
            )

    @property
    def builds_done(self) -> int:
        return 0

    def env_key(self, commit: Commit) -> str:  # noqa: ARG002 (one environment for every commit)
        return "local-" + platform.python_version()

    def prepare(self, commit: Commit, checkout: Path) -> BuiltEnv:
        if self._packages is None:
            self._packages = current_packages()
        inherited = os.environ.get("PYTHONPATH")
        pythonpath = checkout_pythonpath(checkout) + (os.pathsep + inherited if inherited else "")
        python = Path(sys.executable)
        variables = {
            "PYTHONPATH": pythonpath,
            # So a `python` the benchmark itself spawns is this interpreter too.
            "PATH": os.pathsep.join([str(python.parent), os.environ.get("PATH", os.defpath)]),
        }
        return BuiltEnv(
            self.env_key(commit), python, checkout, variables, self._packages, current_runtime()
        )

    def prefetch(self, commits: Sequence[Commit]) -> None:
        """Nothing to build."""

    def close(self) -> None:
        """Nothing to release."""
