"""Shared value types of the pure core: verdicts, directions, outcomes, commits, rules.

Only values live here, all immutable; the Protocols the core works over are in
`bisector.ports`. `MetricRule` and `TrialBudget` are what the judge and the sampling loop
read of the configuration (the engine converts `config.Metric` / `config.Repeats`), so the
core never imports the pydantic models.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What a candidate is, as far as the judge can tell."""

    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"  # untestable: build failed, exit 125, repeated failures
    UNCLEAR = "unclear"  # measured, but neither significantly like good nor like bad


class Direction(enum.Enum):
    """Which way a metric gets better."""

    LOWER = "lower"
    HIGHER = "higher"


class Status(enum.Enum):
    """Outcome of `bisector run` (the contract's `status`)."""

    FOUND = "found"
    NOT_REPRODUCED = "not_reproduced"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return {Status.FOUND: 0, Status.NOT_REPRODUCED: 3, Status.INCONCLUSIVE: 4}[self]


@dataclass(frozen=True)
class Commit:
    """A resolved commit; `sha` is the full 40-hex id."""

    sha: str
    subject: str
    author: str
    date: str  # ISO 8601, committer date
    parents: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class Tag:
    name: str
    sha: str  # the commit the tag points to (peeled)


@dataclass(frozen=True)
class Threshold:
    """The smallest change that counts: relative (`5%`) or absolute (`0.01`)."""

    value: float
    relative: bool

    def min_shift(self, baseline: float) -> float:
        """The threshold as an absolute shift around `baseline`."""
        return abs(baseline) * self.value if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


@dataclass(frozen=True)
class MetricRule:
    """What the judge needs of a metric: which way is better, and the smallest change."""

    direction: Direction
    threshold: Threshold = Threshold(0.05, relative=True)


MAX_REPEATS = (
    10_000  # trials per commit (`repeats.max`); more would never finish, not measure better
)


@dataclass(frozen=True)
class TrialBudget:
    """`benchmark.repeats`: trials of one commit, at least `min`, at most `max`."""

    min: int = 3
    max: int = 15

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.max:
            raise ValueError(f"need 1 <= repeats.min <= repeats.max, got {self.min}, {self.max}")
