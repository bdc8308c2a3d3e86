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

An infinite value is a value (`1/0` is +Inf: the query saw something, and it is past
any `max`); only NaN is no data.

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

    @property
    def bound(self) -> float:
        if self.max is not None:
            return self.max
        assert self.min is not None
        return self.min

    @property
    def side(self) -> str:
        """Where the check breaches: `above` a max, `below` a min."""
        return "above" if self.max is not None else "below"

    def within_text(self, value: float) -> str:
        """`0.0995, limit 0.2 (breaches above)`: a value not past the limit, even one at it."""
        shown, bound = show_pair(value, self.bound)
        return f"{shown}, limit {bound} (breaches {self.side})"

    def past_text(self, value: float) -> str:
        """`0.35 above the limit 0.2`: a value past the limit."""
        shown, bound = show_pair(value, self.bound)
        return f"{shown} {self.side} the limit {bound}"


def show(value: float) -> str:
    """A value as the guard's reasons show it: 3 significant digits, no exponent below 1e15;
    `+Inf`, `-Inf` and `NaN` as Prometheus writes them."""
    if not math.isfinite(value):
        return _non_finite(value)
    if value != 0 and 1e3 <= abs(value) < 1e15:
        return f"{value:.0f}"
    return f"{value:.3g}"


def wire(value: float | None) -> float | str | None:
    """A value as the guard writes it in JSON: ±Inf and NaN as the strings Prometheus's API
    uses (`"+Inf"`, `"-Inf"`, `"NaN"`); JSON has no such numbers (Python's `Infinity` is not
    JSON, and strict parsers refuse the whole document)."""
    return value if value is None or math.isfinite(value) else _non_finite(value)


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def show_value(value: float | str | None) -> str:
    """A value of a JSON document (`wire`'s, or a number) as the reasons show it; `-`: none."""
    return "-" if value is None else show(float(value))  # float("+Inf") is inf


def infinite_note(*values: float) -> str:
    """Why a value shown is infinite, after a reason that shows one; else nothing."""
    if all(math.isfinite(v) for v in values):
        return ""
    return " (an infinite value, e.g. a division by 0)"


def show_pair(value: float, bound: float) -> tuple[str, str]:
    """`value` and `bound` shown, with more digits where 3 would make them read equal."""
    digits = 3
    while digits < 17 and (f"{value:.{digits}g}" == f"{bound:.{digits}g}") != (value == bound):
        digits += 1
    if digits == 3:
        return show(value), show(bound)
    return f"{value:.{digits}g}", f"{bound:.{digits}g}"


def span(seconds: float) -> str:
    """A `for` window as config.md writes it: `5m`, `1h`, `90s`."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


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
            if not math.isnan(v):
                at.setdefault(t, []).append(v)
    return [(t, limit.worst(vs)) for t, vs in sorted(at.items())]


def judge_check(
    samples: Sequence[Sample], limit: Limit, for_s: float, interval_s: float, now: float
) -> Judgement:
    """The state of a check from its samples over [now - for, now] (see the module doc)."""
    start = now - for_s
    window = sorted(
        (t, v) for t, v in samples if start - _SLACK * interval_s <= t <= now and not math.isnan(v)
    )
    needed = samples_needed(for_s, interval_s)
    if not window or window[-1][0] < now - (1 + _SLACK) * interval_s * 2:
        return Judgement(CheckState.BLIND, None, "no recent sample", len(window), needed)
    value = window[-1][1]
    if not limit.past(value):
        reason = limit.within_text(value) + infinite_note(value)
        return Judgement(CheckState.OK, value, reason, len(window), needed)
    within = [t for t, v in window if not limit.past(v)]
    if within:
        held = now - within[-1]
        return Judgement(
            CheckState.PENDING,
            value,
            f"{limit.past_text(value)} for {held:.0f}s of {span(for_s)}{infinite_note(value)}",
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
            f"{limit.past_text(value)} in all {len(window)} samples, but the window needs {needed}"
            + infinite_note(value),
            len(window),
            needed,
        )
    low, high = min(v for _, v in window), max(v for _, v in window)
    return Judgement(
        CheckState.BREACHED,
        value,
        f"{limit.past_text(value)} for {span(for_s)}: {show_pair(low, limit.bound)[0]}..{show_pair(high, limit.bound)[0]} over {len(window)} samples"
        + infinite_note(low, high),
        len(window),
        needed,
    )
