"""The judge: is a regression there, and is a candidate like good or like bad?

Pure functions over samples; the statistics live in `bisector.core.stats`.

**The unit is the process.** Samples arrive grouped by the process (trial) that measured
them, and every test runs on the per-process medians. On GPUs the noise between processes
(clocks, allocator state, a cold device: 3% between process medians, 75% for the first
process after idle) dominates the noise within one, so samples from one process are not
independent draws: treating 100 of them as 100 observations would make a single lucky
process look significant.

**The test** is the minimum of the Mann-Whitney U and Kolmogorov-Smirnov p-values, as
Pinpoint does (see `stats.combined_p`). The effect is the Hodges-Lehmann shift with a
distribution-free confidence interval. A difference counts only when it is significant
*and* its shift is at least the metric's threshold (relative thresholds are taken of the
good endpoint's median, for every comparison).

**Two alphas, because the two mistakes cost differently.** `reproduced` asks whether the
endpoints differ at all, at `REPRODUCE_ALPHA` = 0.05; the threshold keeps its false
positives far below alpha (a no-shift pair must also differ by the threshold). `classify`
decides a step of the search, and a wrong step sends the bisection into the wrong half
with no way back, while UNCLEAR only costs another trial; so it uses `CLASSIFY_ALPHA` =
0.01. Simulated with a 3% process-to-process spread, a 10% regression and a 5% threshold,
alpha 0.05 misjudged about 1 candidate in 400, alpha 0.01 with the guard below about 1
in 2000, for about 1.4 more trials per candidate (tests/test_judge.py keeps that check).

**What alpha means for repeats.** With n vs m process medians the smallest possible
p-value is 2 / C(n+m, n) (`stats.min_p_value`): 3 vs 3 cannot go below 0.1, 4 vs 4 reaches
0.029, 4 vs 6 reaches 0.0095. So no verdict is possible at first against thinly measured
endpoints; it is UNCLEAR and `needs_more` asks for another trial: significance is earned
by sampling, never assumed. `reproduction_needs_more` measures each endpoint at least
`MIN_ENDPOINT_PROCESSES` = 6 times (within repeats.max), so a candidate can be decided at
0.01 from its 4th trial on, and `repeats.max: 15` leaves room for smaller shifts.

**Verdicts (Pinpoint's two-endpoint rule).** A candidate is BAD when it is significantly
worse than good by at least the threshold and not significantly better than bad by at
least the threshold; GOOD in the mirror case. A guard against a lucky draw: the verdict
also needs the candidate's median to lie in the named endpoint's third of the way between
the endpoints' medians (`GUARD_FRACTION`). BAD is never given without significance
against good, nor GOOD without significance against bad. Anything else is UNCLEAR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bisector.core.stats import combined_p, hodges_lehmann, hodges_lehmann_ci, median, min_p_value
from bisector.core.types import Direction, MetricRule, TrialBudget, Verdict

REPRODUCE_ALPHA = 0.05
CLASSIFY_ALPHA = 0.01
# Verifying a culprit looks at the fresh trials after each pair, so it tests at the
# stricter alpha: an unverified culprit costs an honest exit 4, a false one a rollback.
VERIFY_ALPHA = 0.01
GUARD_FRACTION = 1 / 3
MIN_ENDPOINT_PROCESSES = 6

Samples = Sequence[Sequence[float]]
"""Samples grouped by process: one inner sequence per trial."""


def process_medians(samples: Samples) -> list[float]:
    """The per-process medians, the unit every test runs on (see the module docstring).

    :raises ValueError: a process with no samples (a failed trial is not a measurement).
    """
    if any(len(group) == 0 for group in samples):
        raise ValueError("a process reported no samples")
    return [median(group) for group in samples]


@dataclass(frozen=True)
class Comparison:
    """How `other` differs from `reference` in one metric.

    `effect` is the Hodges-Lehmann shift other - reference in the metric's units, `ci`
    its confidence interval at 1 - alpha, `relative_effect` the shift over the baseline
    (the good endpoint's median). `regressed` / `improved`: the shift goes the worse /
    better way by at least the threshold.
    """

    p_value: float
    effect: float
    ci: tuple[float, float]
    relative_effect: float
    significant: bool
    regressed: bool
    improved: bool

    @property
    def reproduced(self) -> bool:
        """A regression is there: significant and worse by at least the threshold."""
        return self.significant and self.regressed


def _worse_sign(metric: MetricRule) -> float:
    """+1 when a larger value is worse (latency), -1 when it is better (accuracy)."""
    return 1.0 if metric.direction is Direction.LOWER else -1.0


def _compare(
    reference: Sequence[float],
    other: Sequence[float],
    metric: MetricRule,
    alpha: float,
    baseline: float,
) -> Comparison:
    effect = hodges_lehmann(reference, other)
    p_value = combined_p(reference, other)
    min_shift = metric.threshold.min_shift(baseline)
    worse_by = effect * _worse_sign(metric)
    return Comparison(
        p_value=p_value,
        effect=effect,
        ci=hodges_lehmann_ci(reference, other, confidence=1 - alpha),
        relative_effect=effect / abs(baseline) if baseline else 0.0,
        significant=p_value < alpha,
        # a zero threshold still needs a shift the right way to count
        regressed=worse_by >= min_shift and worse_by > 0,
        improved=-worse_by >= min_shift and worse_by < 0,
    )


def compare(
    reference: Samples, other: Samples, metric: MetricRule, alpha: float = REPRODUCE_ALPHA
) -> Comparison:
    """Compare `other` with `reference`; the threshold is relative to `reference`'s median."""
    ref = process_medians(reference)
    return _compare(ref, process_medians(other), metric, alpha, median(ref))


def reproduced(
    good: Samples, bad: Samples, metric: MetricRule, alpha: float = REPRODUCE_ALPHA
) -> Comparison:
    """Do the endpoints differ significantly, in the regressed direction, by the threshold?

    Read the answer from `.reproduced`; while it is False and not `.significant`, more
    trials of the endpoints may still show it (`reproduction_needs_more`).
    """
    return compare(good, bad, metric, alpha)


@dataclass(frozen=True)
class Assessment:
    """A candidate's verdict with the two comparisons it rests on."""

    verdict: Verdict
    vs_good: Comparison  # candidate - good
    vs_bad: Comparison  # candidate - bad

    @property
    def between(self) -> bool:
        """Significantly worse than good *and* significantly better than bad, each by the
        threshold: the range holds more than one regression step (not a lack of evidence)."""
        return (
            self.vs_good.significant
            and self.vs_good.regressed
            and self.vs_bad.significant
            and self.vs_bad.improved
        )


def assess(
    candidate: Samples,
    good: Samples,
    bad: Samples,
    metric: MetricRule,
    alpha: float = CLASSIFY_ALPHA,
) -> Assessment:
    """Judge a candidate against both endpoints (the rule is in the module docstring)."""
    cand, good_m, bad_m = process_medians(candidate), process_medians(good), process_medians(bad)
    baseline = median(good_m)
    vs_good = _compare(good_m, cand, metric, alpha, baseline)
    vs_bad = _compare(bad_m, cand, metric, alpha, baseline)
    worse_than_good = vs_good.significant and vs_good.regressed
    better_than_bad = vs_bad.significant and vs_bad.improved
    # The position guard: where the candidate's median lies on the way from good (0)
    # to bad (1); a verdict needs it in the named endpoint's third.
    sign = _worse_sign(metric)
    span = (median(bad_m) - baseline) * sign
    position = (median(cand) - baseline) * sign / span if span > 0 else 0.5
    in_bad_third = position > 1 - GUARD_FRACTION
    in_good_third = position < GUARD_FRACTION
    if worse_than_good and not better_than_bad and in_bad_third:
        verdict = Verdict.BAD
    elif better_than_bad and not worse_than_good and in_good_third:
        verdict = Verdict.GOOD
    else:
        verdict = Verdict.UNCLEAR
    return Assessment(verdict, vs_good, vs_bad)


def classify(
    candidate: Samples,
    good: Samples,
    bad: Samples,
    metric: MetricRule,
    alpha: float = CLASSIFY_ALPHA,
) -> Verdict:
    """GOOD, BAD or UNCLEAR for one candidate (never SKIP: that comes from the runner)."""
    return assess(candidate, good, bad, metric, alpha).verdict


def needs_more(verdict: Verdict, n_processes: int, repeats: TrialBudget) -> bool:
    """Take another trial of a candidate? Below repeats.min always; then while unclear."""
    if n_processes < repeats.min:
        return True
    return verdict is Verdict.UNCLEAR and n_processes < repeats.max


def reproduction_needs_more(
    comparison: Comparison,
    n_processes: int,
    repeats: TrialBudget,
    floor_processes: int = MIN_ENDPOINT_PROCESSES,
) -> bool:
    """Take another trial of each endpoint? While not significant and below repeats.max.

    `n_processes` is the smaller of the two endpoints' counts. Each endpoint is measured
    at least `MIN_ENDPOINT_PROCESSES` times (within repeats.max) even once settled,
    because every candidate is compared with them. A significant difference in the wrong
    direction or below the threshold is a settled "not reproduced". A sequential
    candidate rule needs fewer (`floor_processes`, see `core.sampling`).
    """
    floor = min(max(repeats.min, floor_processes), repeats.max)
    if n_processes < floor:
        return True
    return not comparison.significant and n_processes < repeats.max


def smallest_workable_repeats(alpha: float = CLASSIFY_ALPHA) -> int:
    """The smallest n for which n vs n process medians can give an exact p below `alpha`.

    Fewer trials per commit than this can never give a verdict (`stats.min_p_value`):
    5 at the judge's alpha 0.01.
    """
    n = 1
    while min_p_value(n, n) >= alpha:
        n += 1
    return n


def rules_out_regression(comparison: Comparison, metric: MetricRule, baseline: float) -> bool:
    """The confidence interval of the shift excludes a regression by the threshold.

    More trials would not make it verified (short of a drift), so a verification stops.
    A threshold of 0 (also a relative one of a baseline of 0) counts any worsening, as
    `regressed` does: a shift of at most 0 rules it out (identical values, e.g. an error
    ratio of 0 on both sides, are not a regression of 0).
    """
    low, high = comparison.ci
    min_shift = metric.threshold.min_shift(baseline)
    worst = high if _worse_sign(metric) > 0 else -low  # the worst shift the interval allows
    return worst < min_shift or (min_shift == 0 and worst <= 0)
