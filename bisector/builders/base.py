"""The `EnvBuilder` port: what every builder (local, venv, docker) promises.

A builder turns a candidate commit (and its checkout) into a `BuiltEnv`: the interpreter
and environment variables its benchmark runs with, plus what the environment holds
(resolved packages, runtime facts) for the snapshot. Commits whose environments would be
identical share one *environment key*; `env_key` is cheap (git objects only, no build),
so the pipeline can tell which candidates share an environment before building any.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from bisector.core.types import Commit

if TYPE_CHECKING:
    from bisector.engine.runner import TrialResult

# Benchmark argv[0] spellings that mean "the environment's interpreter".
PYTHON_NAMES = frozenset({"python", "python3"})


@dataclass(frozen=True)
class RuntimeFacts:
    """Facts about the interpreter an environment runs (the snapshot's runtime part)."""

    python_version: str  # e.g. "3.11.7"
    implementation: str  # e.g. "cpython"
    platform: str  # e.g. "Linux-6.5.0-x86_64-with-glibc2.35"

    def as_dict(self) -> dict[str, str]:
        return {
            "python_version": self.python_version,
            "implementation": self.implementation,
            "platform": self.platform,
        }


class TrialLauncher(Protocol):
    """Runs one trial somewhere other than a host process (`runner.run_trial`'s signature).

    `cwd` is the host checkout; the launcher decides how the trial sees it (docker mounts it).
    Whatever it starts is gone when it returns or raises (also on KeyboardInterrupt).
    """

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout_s: float,
        stdout_path: Path, stderr_path: Path, grace_s: float,
    ) -> TrialResult: ...


@dataclass(frozen=True)
class BuiltEnv:
    """An environment ready to run one candidate's benchmark."""

    env_key: str
    python: Path  # the interpreter that `python` in the benchmark argv means
    checkout: Path  # the benchmark's cwd
    env: Mapping[str, str] = field(default_factory=dict)  # set on top of the caller's environment
    packages: tuple[tuple[str, str], ...] = ()  # resolved (name, version), sorted by name
    runtime: RuntimeFacts | None = None
    build_log: Path | None = None
    #: None: trials are host processes. Set (docker): trials run through it, and `environ`
    #: starts from an empty environment instead of the host's.
    launcher: TrialLauncher | None = None

    def command(self, argv: Sequence[str]) -> list[str]:
        """The benchmark argv with a leading `python`/`python3` bound to this env's interpreter."""
        if argv and argv[0] in PYTHON_NAMES:
            return [str(self.python), *argv[1:]]
        return list(argv)

    def environ(self, *extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: os.environ, or nothing with a launcher), then this env's variables,
        then each of `extra`."""
        if base is None:
            base = {} if self.launcher is not None else os.environ
        merged = dict(base)
        merged.update(self.env)
        for layer in extra:
            merged.update(layer)
        return merged


@runtime_checkable
class EnvBuilder(Protocol):
    """Builds (or reuses) the environment a candidate's benchmark runs in.

    Implementations are thread-safe: `prefetch` builds in background threads while the
    pipeline calls `prepare` for the current candidate.
    """

    name: ClassVar[str]
    #: True when different dependency pins give different environments (venv, docker);
    #: False for `local`, which runs every commit with the current interpreter.
    isolates_dependencies: ClassVar[bool]

    @property
    def builds_done(self) -> int:
        """How many environments this builder built (not reused) since it was created."""
        ...

    def env_key(self, commit: Commit) -> str:
        """The key of `commit`'s environment; equal keys share one environment.

        Cheap: reads requirement files from git objects, builds nothing.
        """
        ...

    def prepare(self, commit: Commit, checkout: Path) -> BuiltEnv:
        """The environment to benchmark `commit` checked out at `checkout`.

        Reuses a cached environment with the same key, awaits one being built.

        :raises BuildError: the environment (or the per-commit install) failed; the
            error's `log_path` names the kept build log. The candidate is untestable.
        """
        ...

    def prefetch(self, commits: Sequence[Commit]) -> None:
        """Start building the environments of `commits` in the background; returns at once.

        Failures are remembered and raised by the `prepare` of a commit with that key.
        """
        ...

    def close(self) -> None:
        """Wait for background builds and release resources."""
        ...


def checkout_pythonpath(checkout: Path) -> str:
    """`PYTHONPATH` that puts the checkout's code first (`src/` layout included)."""
    entries = [checkout]
    if (checkout / "src").is_dir():
        entries.insert(0, checkout / "src")
    return os.pathsep.join(str(e) for e in entries)
