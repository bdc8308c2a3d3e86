"""The ports: the Protocols the pure core and the engine work over, and the progress events.

Adapters implement them (`gitrepo.GitRepo` is a `Vcs`, the builders are `EnvBuilder`s,
`engine.measure.Measurer` is a `Probe`, `isolate.states.MeasuredStates` a `StateProbe`);
the core and the orchestration only see these shapes, so tests can hand them fakes.

Progress is typed: one frozen dataclass per event, rendered by `cli.progress.ConsoleProgress`
and watched by the daemon (a step counter, and the stop check before every trial).

Like the core, this module imports no git, subprocess, docker, sqlite, pydantic or yaml
code; the adapter types it names are imported for type checking only.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from bisector.core.types import Commit, Tag, Verdict

StateT = TypeVar("StateT", contravariant=True)


# -- the repository ---------------------------------------------------------------------


@runtime_checkable
class Vcs(Protocol):
    """Read-only access to a repository; never touches the user's working tree."""

    root: Path

    def resolve(self, ref: str) -> Commit:
        """:raises RefError: an unsafe ref (see `gitrepo.validate_ref`) or not a commit."""
        ...

    def is_ancestor(self, ancestor: str, descendant: str) -> bool: ...

    def commits_between(self, good: str, bad: str, *, first_parent: bool = True) -> list[Commit]:
        """Commits in (good, bad], oldest first."""
        ...

    def tags_between(self, good: str, bad: str, *, first_parent: bool = True) -> list[Tag]:
        """Tags on commits in (good, bad), oldest first."""
        ...

    def tags(self) -> list[Tag]: ...

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The file's bytes from git objects, None when absent at that commit."""
        ...

    def list_files(self, commit: str) -> list[str]: ...

    def changed_paths(self, a: str, b: str) -> list[str]: ...

    def diffstat(self, a: str, b: str) -> str: ...

    def worktree(self, commit: str, dest: Path) -> AbstractContextManager[Path]:
        """A detached checkout of `commit` at `dest`, removed on exit."""
        ...

    def close(self) -> None: ...


# -- environments and trials ------------------------------------------------------------


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

    def environ(
        self, *extra: Mapping[str, str], base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """`base` (default: os.environ, or nothing with a launcher), then this env's variables,
        then each of `extra`."""
        if base is None:
            base = {} if self.launcher is not None else os.environ
        merged = dict(base)
        merged.update(self.env)
        for layer in extra:
            merged.update(layer)
        return merged


class TrialStatus(enum.Enum):
    OK = "ok"
    SKIP = "skip"  # untestable: exit 125, or failed twice
    FAILED = "failed"


@dataclass(frozen=True)
class TrialResult:
    """What one benchmark process produced; logs stay on disk at the given paths."""

    status: TrialStatus
    metrics: dict[str, tuple[float, ...]]
    meta: dict[str, Any]
    exit_code: int | None  # None when killed on timeout; negative: killed by that signal
    duration_s: float
    stdout_path: Path
    stderr_path: Path
    reason: str = ""  # why it is not OK, for logs and reports
    timed_out: bool = False
    attempts: int = 1
    earlier: tuple[TrialResult, ...] = field(default=())  # failed attempts before this one

    @property
    def ok(self) -> bool:
        return self.status is TrialStatus.OK

    @classmethod
    def failed_to_launch(
        cls, duration_s: float, stdout_path: Path, stderr_path: Path, reason: str
    ) -> TrialResult:
        """A trial the launcher itself could not run (no process, no container): no
        samples and no exit code; the reason goes to logs and reports."""
        return cls(TrialStatus.FAILED, {}, {}, None, duration_s, stdout_path, stderr_path, reason)


class TrialLauncher(Protocol):
    """Runs one trial somewhere other than a host process (`runner.run_trial`'s signature).

    `cwd` is the host checkout; the launcher decides how the trial sees it (docker mounts it).
    Whatever it starts is gone when it returns or raises (also on KeyboardInterrupt).
    """

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout_s: float,
        stdout_path: Path,
        stderr_path: Path,
        grace_s: float,
    ) -> TrialResult: ...


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


class TrialSamples(Protocol):
    """One finished trial, as the sampling loop reads it.

    The journal's `TrialRow` and `TrialResult` both have this shape. `metrics`
    holds every metric the benchmark printed, so a trial that succeeded without the
    configured one still counts as a trial (and says what it printed instead).
    """

    @property
    def ok(self) -> bool: ...

    @property
    def metrics(self) -> Mapping[str, Sequence[float]]: ...


class Probe(Protocol):
    """Measures one commit (real or synthetic), one trial at a time."""

    def take(self, commit: Commit) -> object:
        """Run one more trial of `commit`; it is recorded before this returns."""
        ...

    def trials(self, commit: Commit) -> Sequence[TrialSamples]:
        """Every recorded trial of `commit`, in the order taken (the samples, by process)."""
        ...

    def untestable(self, commit: Commit) -> bool:
        """True once `commit` cannot be measured (its build failed, exit 125, failed twice)."""
        ...


Expect = Literal["recovered", "regressed"]


@dataclass(frozen=True)
class Check:
    """One verification comparison: `state` against a reference, in fresh trials."""

    state: str
    expect: Expect
    passed: bool
    relative_effect: float | None
    effect: float | None
    p_value: float | None
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "expect": self.expect,
            "passed": self.passed,
            "effect": self.effect,
            "relative_effect": self.relative_effect,
            "p_value": self.p_value,
            "confidence": None if self.p_value is None else round(1.0 - self.p_value, 4),
            "samples": self.samples,
        }


class StateProbe(Protocol[StateT]):
    """Measures isolation states against the parent (good) and the culprit (bad)."""

    def verdict(self, state: StateT, phase: str) -> Verdict:
        """GOOD / BAD / UNCLEAR against the references; SKIP when it cannot be built."""
        ...

    def verify(self, state: StateT, expect: Expect) -> Check:
        """Fresh trials of `state` and of the reference (culprit for `recovered`, parent
        for `regressed`); passed when the expected significant change is there."""
        ...


# -- progress ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialStarted:
    """One more trial of `commit` (a short id) is about to run; `n` counts its trials."""

    phase: str
    commit: str
    n: int


@dataclass(frozen=True)
class ProbeStarted:
    """A candidate (or an isolation state) is about to be measured."""

    phase: str
    commit: str  # short id
    subject: str
    left: int | None = None  # the search's estimate of the steps left, this one included


@dataclass(frozen=True)
class VerdictReached:
    """A candidate's verdict; `label` is what a human reads (short id, or the state)."""

    phase: str
    commit: str  # full id (a synthetic id for isolation states)
    label: str
    verdict: Verdict
    samples: int  # processes with samples of the metric
    median: float | None
    reason: str = ""  # why SKIP, when it is


#: `RangeNarrowed.what` of isolation inside a culprit commit: `n` counts the changes.
ISOLATING = "changes inside the culprit"


@dataclass(frozen=True)
class RangeNarrowed:
    """The search starts over `n` candidates (`what`: release tags, commits, changes)."""

    n: int
    what: str


@dataclass(frozen=True)
class PhaseStarted:
    """A named phase begins (e.g. `verify-isolation`)."""

    name: str


@dataclass(frozen=True)
class Warned:
    """Something the user should know before the search goes on (said once)."""

    message: str


@dataclass(frozen=True)
class Resumed:
    """An interrupted run continues with `trials` trials already journaled."""

    run_id: str
    trials: int


@dataclass(frozen=True)
class RollingBack:
    """`run --rollback`: the configs go back to the good ref."""

    to: str


ProgressEvent = (
    TrialStarted
    | ProbeStarted
    | VerdictReached
    | RangeNarrowed
    | PhaseStarted
    | Resumed
    | RollingBack
    | Warned
)
Progress = Callable[[ProgressEvent], None]


def no_progress(_event: ProgressEvent) -> None:
    """The `Progress` that ignores every event."""
    return None
