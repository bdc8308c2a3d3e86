"""Not reproduced, or only not seen? The endpoints' equivalence check. Pure.

    settle_null(probe, metric, rule, budget, (good, bad), take) -> NullCheck
    worst_regression(good, bad, rule) -> float

When the endpoints do not show the regression (`judge.reproduced` is not settled, or
settles the other way or below the threshold), that alone does not say there is none: a
CPU hog beside the benchmark can lift the good endpoint's trials as much as a +25% step
lifts the bad one's. `not_reproduced` (exit 3) reads "no regression here", so it is said
only when the endpoints' trials **rule out** a regression of the threshold in the
regressed direction: the upper confidence bound of the shift bad − good (the
Hodges–Lehmann interval, `stats.hodges_lehmann_ci`, at `EQUIVALENCE_CONFIDENCE` two-sided,
so a one-sided 95% bound: the equivalence half of Schuirmann's TOST) is below the
threshold. Until it is, both endpoints are measured on, interleaved, up to
`repeats.max` trials a side; a regression that shows up meanwhile is reproduced and the
hunt searches for it. When the bound is still at or above the threshold, the status is
`inconclusive` (exit 4) with a reason that says so (`reason`).

On a quiet machine a range without a regression rules it out easily (15 vs 15 processes
with a 3% spread bound the shift within about 2%); bench/simulate.py measured it under
every noise model (bench/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bisector.core import judge
from bisector.core.sampling import samples_of
from bisector.core.stats import hodges_lehmann_ci, median
from bisector.core.types import Commit, Direction, MetricRule, TrialBudget

if TYPE_CHECKING:
    from bisector.ports import Probe

#: Two-sided confidence of the interval whose upper end must lie below the threshold: its
#: upper bound is a one-sided 95% bound (TOST's convention).
EQUIVALENCE_CONFIDENCE = 0.90


@dataclass(frozen=True)
class NullCheck:
    """The endpoints after the check: their comparison on every trial, and whether a
    regression of the threshold is ruled out (`worst` is the bound, relative to good)."""

    reproduction: judge.Comparison
    rules_out: bool
    worst: float
    processes: int  # the fewer of the two endpoints' processes


def worst_shift(good: judge.Samples, bad: judge.Samples, rule: MetricRule) -> float:
    """The upper confidence bound of how much worse bad is than good, in the metric's
    units (inf when too few processes to bound it; negative: better at worst)."""
    gm, bm = judge.process_medians(good), judge.process_medians(bad)
    low, high = hodges_lehmann_ci(gm, bm, EQUIVALENCE_CONFIDENCE)
    return high if rule.direction is Direction.LOWER else -low


def worst_regression(good: judge.Samples, bad: judge.Samples, rule: MetricRule) -> float:
    """`worst_shift` relative to good's median (inf when it is inf, or good's median 0)."""
    worst = worst_shift(good, bad, rule)
    baseline = median(judge.process_medians(good))
    if math.isinf(worst) or not baseline:
        return math.inf
    return worst / abs(baseline)


def _rules_out(worst_abs: float, rule: MetricRule, baseline: float) -> bool:
    """In the metric's units, so an absolute threshold over a good end at 0 can be met. A
    threshold of 0 counts any worsening, so a worst shift of at most 0 rules it out (as
    `judge.rules_out_regression`): two ends at exactly 0 are not a regression."""
    min_shift = rule.threshold.min_shift(baseline)
    return worst_abs < min_shift or (min_shift == 0 and worst_abs <= 0)


def settle_null(
    probe: Probe,
    metric: str,
    rule: MetricRule,
    budget: TrialBudget,
    ends: tuple[Commit, Commit],
    take: Callable[[Commit], None],
) -> NullCheck:
    """Measure both endpoints on (interleaved, the one behind first) until a regression of
    the threshold is ruled out, or reproduced, or `repeats.max` trials a side are spent."""
    good, bad = ends
    while True:
        tg, tb = probe.trials(good), probe.trials(bad)
        gs, bs = samples_of(tg, metric), samples_of(tb, metric)
        comparison = judge.reproduced(gs, bs, rule)
        worst = worst_regression(gs, bs, rule)
        baseline = median(judge.process_medians(gs))
        shift = worst_shift(gs, bs, rule)
        ruled_out = not comparison.reproduced and _rules_out(shift, rule, baseline)
        done = min(len(tg), len(tb))
        stuck = probe.untestable(good) or probe.untestable(bad)
        if comparison.reproduced or ruled_out or done >= budget.max or stuck:
            return NullCheck(comparison, ruled_out, worst, min(len(gs), len(bs)))
        for commit, trials in (
            ((good, tg), (bad, tb)) if len(tg) <= len(tb) else ((bad, tb), (good, tg))
        ):
            if len(trials) <= done:
                take(commit)


def reason(check: NullCheck, rule: MetricRule, warning: str | None) -> str:
    """Why a range that did not reproduce is INCONCLUSIVE rather than NOT_REPRODUCED."""
    bound = "any amount" if math.isinf(check.worst) else f"up to {check.worst * 100:.1f}%"
    fix = warning or "measure on a quieter machine, or raise repeats.max"
    return (
        f"the endpoints' noise cannot rule out a regression of the threshold {rule.threshold}: "
        f"bad may be {bound} worse than good (95% confidence bound, {check.processes} "
        f"processes a side); {fix}"
    )
