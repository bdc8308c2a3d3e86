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
from bisector.core.stats import median
from bisector.core.types import MetricRule
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
    base = [v for v in baseline if math.isfinite(v)]
    can = [v for v in canary if math.isfinite(v)]
    need = min_samples(alpha)
    if len(base) < need or len(can) < need:
        return CanaryResult(
            CanaryVerdict.INCONCLUSIVE,
            f"too few samples: baseline {len(base)}, canary {len(can)}; each needs {need}",
        )
    cmp = compare([[v] for v in base], [[v] for v in can], rule, alpha)
    b_med, c_med = median(base), median(can)
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
    shift = f"{c_med:g} vs {b_med:g} ({effect}, p={cmp.p_value:.3g})"
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
