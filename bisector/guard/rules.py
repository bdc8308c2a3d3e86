"""When a check breaches: past its limit for the whole `for` window (pure).

The semantics of a Prometheus alerting rule's `for`, judged from a range query so that
one evaluation (`bisector guard --once`, from cron) decides it as well as a long-running
loop does: the window [now - for, now] is sampled at `interval` steps, and the check is

- BREACHED when the newest sample is past the limit, *every* sample in the window is,
  and the window is fully covered (as many samples as the window holds steps, no gap);
- PENDING when the newest sample is past the limit but not all of the window is (a spike
  shorter than `for`) or the window is not covered yet (fewer samples than it needs);
- OK when the newest sample is within the limit;
- BLIND when there is no recent sample at all (no data is never healthy, and never a
  reason to act).

A single sample back within the limit resets the window, so a value hovering around the
limit never breaches from scattered excursions (no flapping).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

Sample = tuple[float, float]
"""(Unix time, value) of one step of a range query."""

# A step is "there" when a sample lies within half a step of it: Prometheus evaluates a
# range query exactly at start + k * step, so anything looser would only hide a gap.
_SLACK = 0.5


class CheckState(StrEnum):
    OK = "ok"
    PENDING = "pending"
    BREACHED = "breached"
    BLIND = "blind"


@dataclass(frozen=True)
class Limit:
    """Exactly one of `max` (breached above) or `min` (breached below)."""

    max: float | None = None
    min: float | None = None

    def __post_init__(self) -> None:
        if (self.max is None) == (self.min is None):
            raise ValueError("a limit is exactly one of max or min")

    def past(self, value: float) -> bool:
        if self.max is not None:
            return value > self.max
        assert self.min is not None
        return value < self.min

    def worst(self, values: Sequence[float]) -> float:
        """Of several series at one instant, the one nearest to breaching (or past it)."""
        return max(values) if self.max is not None else min(values)

    def __str__(self) -> str:
        return f"> {self.max:g}" if self.max is not None else f"< {self.min:g}"


@dataclass(frozen=True)
class Judgement:
    state: CheckState
    value: float | None  # the newest sample's value
    reason: str
    samples: int  # in the window
    needed: int  # samples a fully covered window holds


def samples_needed(for_s: float, interval_s: float) -> int:
    """Steps of a range query over [now - for, now] at `interval`, both ends included."""
    return int(math.floor(for_s / interval_s + 1e-9)) + 1


def merge_series(series: Sequence[Sequence[Sample]], limit: Limit) -> list[Sample]:
    """Several series of one query as one: the worst value at each instant."""
    at: dict[float, list[float]] = {}
    for one in series:
        for t, v in one:
            if math.isfinite(v):
                at.setdefault(t, []).append(v)
    return [(t, limit.worst(vs)) for t, vs in sorted(at.items())]


def judge_check(
    samples: Sequence[Sample], limit: Limit, for_s: float, interval_s: float, now: float
) -> Judgement:
    """The state of a check from its samples over [now - for, now] (see the module doc)."""
    start = now - for_s
    window = sorted(
        (t, v) for t, v in samples if start - _SLACK * interval_s <= t <= now and math.isfinite(v)
    )
    needed = samples_needed(for_s, interval_s)
    if not window or window[-1][0] < now - (1 + _SLACK) * interval_s * 2:
        return Judgement(CheckState.BLIND, None, "no recent sample", len(window), needed)
    value = window[-1][1]
    if not limit.past(value):
        return Judgement(
            CheckState.OK, value, f"{value:g} within the limit ({limit})", len(window), needed
        )
    within = [t for t, v in window if not limit.past(v)]
    if within:
        held = now - within[-1]
        return Judgement(
            CheckState.PENDING,
            value,
            f"past the limit ({limit}) for {held:g}s of {for_s:g}s",
            len(window),
            needed,
        )
    covered = (
        len(window) >= needed
        and window[0][0] <= start + _SLACK * interval_s
        and all(
            b[0] - a[0] <= (1 + _SLACK) * interval_s
            for a, b in zip(window, window[1:], strict=False)
        )
    )
    if not covered:
        return Judgement(
            CheckState.PENDING,
            value,
            f"past the limit ({limit}) in all {len(window)} samples, but the window needs {needed}",
            len(window),
            needed,
        )
    low, high = min(v for _, v in window), max(v for _, v in window)
    return Judgement(
        CheckState.BREACHED,
        value,
        f"past the limit ({limit}) for {for_s:g}s: {low:g}..{high:g} over {len(window)} samples",
        len(window),
        needed,
    )
