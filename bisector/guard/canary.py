"""Canary against baseline, with the bisection's judge (pure).

The samples of the canary and of the baseline over the window (one per `interval` step
of a range query) are compared as a bisection compares two endpoints: the minimum of the
Mann-Whitney U and Kolmogorov-Smirnov p-values, the Hodges-Lehmann shift and its
confidence interval, the metric's threshold as the smallest change that counts
(Kayenta's way). Each sample is its own unit: instants of a live service are not trials
of one process.

- FAIL: the canary is significantly worse than the baseline, by at least the threshold.
- PASS: the shift's confidence interval rules out a worsening by the threshold.
- INCONCLUSIVE: anything else, including too few samples for any verdict at all;
  Argo Rollouts' rule: an inconclusive canary is never promoted (the guard pauses).

NaN is no sample. ±Inf is one (`1/0`, e.g. a ratio over no successful request): the rank
tests order it past every finite value, and two of them of one sign are a tie. A side
whose median is infinite has no shift to measure by a threshold: a canary infinitely
worse than a finite baseline fails (when the rank tests tell the sides apart), worse by
any threshold; anything else with an infinite median (the baseline's, or a canary
infinitely *better*, which no real measurement is) is inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bisector.core.judge import (
    REPRODUCE_ALPHA,
    compare,
    rules_out_regression,
    smallest_workable_repeats,
)
from bisector.core.stats import combined_p, median
from bisector.core.types import Direction, MetricRule
from bisector.guard.rules import infinite_note, show
from bisector.report.wording import percent


class CanaryVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class CanaryResult:
    verdict: CanaryVerdict
    reason: str
    baseline_median: float | None = None
    canary_median: float | None = None
    relative_effect: float | None = None
    p_value: float | None = None


ALPHA = REPRODUCE_ALPHA


def min_samples(alpha: float = ALPHA) -> int:
    """Fewer samples a side than this can never reach `alpha` (an exact test's floor)."""
    return smallest_workable_repeats(alpha)


def judge_canary(
    baseline: Sequence[float], canary: Sequence[float], rule: MetricRule, alpha: float = ALPHA
) -> CanaryResult:
    base = [v for v in baseline if not math.isnan(v)]
    can = [v for v in canary if not math.isnan(v)]
    need = min_samples(alpha)
    if len(base) < need or len(can) < need:
        return CanaryResult(
            CanaryVerdict.INCONCLUSIVE,
            f"too few samples: baseline {len(base)}, canary {len(can)}; each needs {need}",
        )
    b_med, c_med = median(base), median(can)
    if not (math.isfinite(b_med) and math.isfinite(c_med)):
        return _infinite_median(base, can, b_med, c_med, rule, alpha)
    cmp = compare([[v] for v in base], [[v] for v in can], rule, alpha)
    # No percentage of a baseline of 0 exists (the judge writes 0.0): the shift in units.
    relative = cmp.relative_effect if b_med != 0 else None
    facts = {
        "baseline_median": b_med,
        "canary_median": c_med,
        "relative_effect": relative,
        "p_value": cmp.p_value,
    }
    effect = (
        percent(relative) if relative is not None else f"{cmp.effect:+.3g} from a baseline of 0"
    )
    shift = f"{c_med:g} vs {b_med:g} ({effect}, p={cmp.p_value:.3g}){_infinities(base, can)}"
    if cmp.reproduced:
        return CanaryResult(
            CanaryVerdict.FAIL, f"canary worse by at least {rule.threshold}: {shift}", **facts
        )
    if rules_out_regression(cmp, rule, b_med):
        return CanaryResult(
            CanaryVerdict.PASS, f"canary not worse by {rule.threshold}: {shift}", **facts
        )
    return CanaryResult(
        CanaryVerdict.INCONCLUSIVE, f"cannot tell at {rule.threshold}: {shift}", **facts
    )


def _infinities(base: Sequence[float], can: Sequence[float]) -> str:
    """` (±Inf samples: baseline 0, canary 2)` when there are any (a median stays finite)."""
    b, c = (sum(1 for v in side if math.isinf(v)) for side in (base, can))
    return f" (±Inf samples: baseline {b}, canary {c})" if b or c else ""


def _infinite_median(
    base: Sequence[float],
    can: Sequence[float],
    b_med: float,
    c_med: float,
    rule: MetricRule,
    alpha: float,
) -> CanaryResult:
    """A median of ±Inf (or NaN: -Inf and +Inf in its middle) on either side (module doc)."""
    worst = math.inf if rule.direction is Direction.LOWER else -math.inf
    p = combined_p(base, can)
    shift = f"{show(c_med)} vs {show(b_med)} (p={p:.3g}){infinite_note(b_med, c_med)}"
    facts = {
        "baseline_median": None if math.isnan(b_med) else b_med,
        "canary_median": None if math.isnan(c_med) else c_med,
        "relative_effect": None,
        "p_value": p,
    }
    if math.isfinite(b_med) and c_med == worst and p < alpha:
        return CanaryResult(
            CanaryVerdict.FAIL, f"canary worse by at least {rule.threshold}: {shift}", **facts
        )
    return CanaryResult(
        CanaryVerdict.INCONCLUSIVE,
        f"cannot tell at {rule.threshold}, a median is not finite: {shift}",
        **facts,
    )
