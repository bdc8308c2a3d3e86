"""What a builder hands the pipeline: `BuiltEnv`, and the runtime facts of an environment.

A builder turns a candidate commit (and its checkout) into a `BuiltEnv`: the interpreter
and environment variables its benchmark runs with, plus what the environment holds
(resolved packages, runtime facts) for the snapshot. Commits whose environments would be
identical share one *environment key*; `env_key` is cheap (git objects only, no build),
so the pipeline can tell which candidates share an environment before building any.

The `EnvBuilder` and `TrialLauncher` ports themselves live in `bisector.ports`; they are
re-exported here for the builders that name them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bisector.ports import EnvBuilder as EnvBuilder
from bisector.ports import TrialLauncher as TrialLauncher

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


def checkout_pythonpath(checkout: Path) -> str:
    """`PYTHONPATH` that puts the checkout's code first (`src/` layout included)."""
    entries = [checkout]
    if (checkout / "src").is_dir():
        entries.insert(0, checkout / "src")
    return os.pathsep.join(str(e) for e in entries)
