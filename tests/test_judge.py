"""The judge and its statistics, on synthetic samples with fixed seeds."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import pytest

from bisector.core.judge import (
    CLASSIFY_ALPHA,
    assess,
    classify,
    compare,
    needs_more,
    process_medians,
    reproduced,
    reproduction_needs_more,
)
from bisector.core.stats import (
    combined_p,
    hodges_lehmann,
    hodges_lehmann_ci,
    ks_p,
    mann_whitney_p,
    mann_whitney_u,
    min_p_value,
    pairwise_shifts,
    u_distribution,
)
from bisector.core.types import Direction, MetricRule, Threshold, TrialBudget, Verdict

LATENCY = MetricRule(direction=Direction.LOWER, threshold=Threshold(0.05, relative=True))
ACCURACY = MetricRule(direction=Direction.HIGHER, threshold=Threshold(0.01, relative=False))
REPEATS = TrialBudget(min=3, max=15)


# --- exact p-values against hand-known values and brute force ---------------------------


def test_mwu_fully_separated_small_samples_give_the_known_exact_p() -> None:
    """3 vs 3 separated is p = 0.1, 4 vs 4 is 2/70, 5 vs 5 is 2/252, either way round."""
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert mann_whitney_p([4, 5, 6], [1, 2, 3]) == pytest.approx(0.1)
    assert mann_whitney_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)
    assert mann_whitney_p(range(5), range(10, 15)) == pytest.approx(2 / 252)
    assert ks_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert ks_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)


def test_u_distribution_counts_every_ordering() -> None:
    """The null distribution of U for 2 vs 2 is 1,1,2,1,1 and sums to C(n+m, n) in general."""
    assert u_distribution(2, 2) == (1, 1, 2, 1, 1)
    for n, m in [(3, 7), (5, 5), (8, 4)]:
        assert sum(u_distribution(n, m)) == math.comb(n + m, n)


def _permutation_p(x: Sequence[float], y: Sequence[float], statistic: str) -> float:
    """Exact two-sided permutation p-value by enumerating every split of the pooled values."""
    pooled, n, m = [*x, *y], len(x), len(y)

    def stat(a: Sequence[float], b: Sequence[float]) -> float:
        if statistic == "mwu":
            return abs(mann_whitney_u(a, b) - n * m / 2)
        return max(abs(sum(v <= t for v in a) / n - sum(v <= t for v in b) / m) for t in pooled)

    observed = stat(x, y)
    hits = total = 0
    for chosen in itertools.combinations(range(n + m), n):
        a = [pooled[i] for i in chosen]
        b = [pooled[i] for i in range(n + m) if i not in chosen]
        hits += stat(a, b) >= observed - 1e-12
        total += 1
    return hits / total


def test_exact_p_values_match_brute_force_enumeration() -> None:
    """For small samples without ties, MWU and KS p-values equal full enumeration."""
    rng = random.Random(11)
    for n, m in [(3, 4), (4, 4), (5, 3), (5, 6), (2, 7)]:
        for _ in range(5):
            x = [rng.gauss(0, 1) for _ in range(n)]
            y = [rng.gauss(0.8, 1) for _ in range(m)]
            assert mann_whitney_p(x, y) == pytest.approx(_permutation_p(x, y, "mwu"))
            assert ks_p(x, y) == pytest.approx(_permutation_p(x, y, "ks"))


def test_ties_use_the_corrected_normal_approximation_and_all_equal_gives_one() -> None:
    """Tied samples still give a p-value in (0, 1]; identical samples give exactly 1."""
    assert mann_whitney_p([5, 5, 5], [5, 5, 5]) == 1.0
    assert ks_p([5, 5, 5], [5, 5, 5]) == 1.0
    p = mann_whitney_p([1, 1, 2, 2, 3], [3, 4, 4, 5, 5])
    assert 0 < p < 0.05
    assert (
        ks_p([1, 1, 2, 2, 3], [3, 4, 4, 5, 5])
        >= _permutation_p([1, 1, 2, 2, 3], [3, 4, 4, 5, 5], "ks") - 1e-12
    )


def test_large_samples_use_the_approximations_consistently() -> None:
    """Past the exact limit the approximate p-values agree with the exact ones nearby."""
    rng = random.Random(5)
    x = [rng.gauss(0, 1) for _ in range(60)]
    y = [rng.gauss(0.4, 1) for _ in range(60)]
    # 49 vs 49 is exact, 60 vs 60 approximate: both see the same moderate shift
    assert mann_whitney_p(x, y) < 0.1
    assert abs(mann_whitney_p(x[:49], y[:49]) - mann_whitney_p(x[:50], y[:50])) < 0.1
    assert 0 <= ks_p(x, y) <= 1


def test_combined_p_is_the_smaller_of_mwu_and_ks() -> None:
    """Pinpoint's combination: a shape change KS sees but MWU does not still counts."""
    narrow = [10.0 + 0.01 * i for i in range(12)]
    wide = [10.06 + (-1) ** i * (1 + 0.1 * i) for i in range(12)]  # same centre, spread out
    assert combined_p(narrow, wide) == min(mann_whitney_p(narrow, wide), ks_p(narrow, wide))
    assert ks_p(narrow, wide) < mann_whitney_p(narrow, wide)


def test_min_p_value_says_when_significance_is_reachable() -> None:
    """3 vs 3 can never go below 0.1; 4 vs 6 can go below 0.01."""
    assert min_p_value(3, 3) == pytest.approx(0.1)
    assert min_p_value(4, 6) < 0.01 < min_p_value(3, 6)


# --- Hodges-Lehmann ----------------------------------------------------------------------


def test_hodges_lehmann_recovers_a_pure_shift_and_its_ci_covers_it() -> None:
    """Shifting every value by 3 gives an HL estimate of 3 inside its confidence interval."""
    x = [1.0, 4.0, 2.5, 7.0, 3.3, 5.1, 6.2, 0.4]
    y = [v + 3 for v in x]
    assert hodges_lehmann(x, y) == pytest.approx(3)
    low, high = hodges_lehmann_ci(x, y)
    assert low <= 3 <= high


def test_infinities_of_one_sign_on_both_sides_are_a_tie_not_a_nan_shift() -> None:
    """`inf - inf` is NaN: with ±Inf on both sides (a live canary's `1/0`) the shifts'
    sort came out of order and the estimate was any of them. Two +Inf differ by 0, as the
    rank tests count them; +Inf against a finite value is an unbounded shift: the
    estimate is the one of a value past every finite one, the same on both sides."""
    x, y = [1.0, 2.0, 3.0, math.inf, math.inf], [2.0, 3.0, 4.0, math.inf, math.inf]
    shifts = pairwise_shifts(x, y)
    assert not any(math.isnan(v) for v in shifts) and shifts == sorted(shifts)
    far = [[1e9 if math.isinf(v) else v for v in side] for side in (x, y)]
    assert hodges_lehmann(x, y) == hodges_lehmann(*far)
    assert pairwise_shifts([1.0], [math.inf, -math.inf]) == [-math.inf, math.inf]


def test_hl_ci_is_unbounded_when_samples_cannot_support_the_confidence() -> None:
    """3 vs 3 cannot give a 95% interval (the best is 90%), so it is (-inf, inf)."""
    assert hodges_lehmann_ci([1, 2, 3], [4, 5, 6], 0.95) == (-math.inf, math.inf)
    low, high = hodges_lehmann_ci([1, 2, 3], [4, 5, 6], 0.85)
    assert math.isfinite(low) and math.isfinite(high)


def test_hl_ci_covers_the_true_shift_at_its_level() -> None:
    """Over 300 simulated 8 vs 8 samples the 95% interval holds the true shift >= 93% of the time."""
    rng = random.Random(3)
    covered = 0
    for _ in range(300):
        x = [rng.gauss(100, 5) for _ in range(8)]
        y = [rng.gauss(110, 5) for _ in range(8)]
        low, high = hodges_lehmann_ci(x, y, 0.95)
        covered += low <= 10 <= high
    assert covered / 300 >= 0.93


# --- the judge ---------------------------------------------------------------------------


def trial(rng: random.Random, centre: float, samples: int = 10) -> list[float]:
    """One benchmark process: a 3% process-to-process offset plus 5% Gaussian noise per sample."""
    offset = rng.gauss(0, 0.03 * centre)
    return [centre + offset + rng.gauss(0, 0.05 * centre) for _ in range(samples)]


def trials(rng: random.Random, centre: float, count: int) -> list[list[float]]:
    return [trial(rng, centre) for _ in range(count)]


def test_process_medians_is_the_unit_and_refuses_empty_processes() -> None:
    """Each process contributes its median; a process without samples is an error."""
    assert process_medians([[1, 2, 30], [4, 5]]) == [2, 4.5]
    with pytest.raises(ValueError):
        process_medians([[1.0], []])


def test_reproduced_finds_a_ten_percent_regression() -> None:
    """A 10% latency regression over 8 processes each is significant, regressed and sized."""
    rng = random.Random(1)
    result = reproduced(trials(rng, 100, 8), trials(rng, 110, 8), LATENCY)
    assert result.reproduced and result.significant and result.regressed
    assert 0.05 < result.relative_effect < 0.15
    assert result.ci[0] <= result.effect <= result.ci[1]


def test_no_shift_is_not_reproduced_in_nearly_all_trials() -> None:
    """With no true shift the false positive rate stays at or below alpha."""
    rng = random.Random(2)
    positives = sum(
        reproduced(trials(rng, 100, 8), trials(rng, 100, 8), LATENCY).reproduced for _ in range(400)
    )
    assert positives / 400 <= 0.05


def test_an_improvement_or_a_sub_threshold_shift_is_not_a_regression() -> None:
    """Faster is not a regression; a significant 2% shift under a 5% threshold is not either."""
    rng = random.Random(4)
    faster = reproduced(trials(rng, 100, 10), trials(rng, 85, 10), LATENCY)
    assert faster.significant and faster.improved and not faster.reproduced
    good = [[100.0 + 0.01 * i + 0.001 * j for j in range(5)] for i in range(10)]
    bad = [[v + 2 for v in process] for process in good]
    small = reproduced(good, bad, LATENCY)
    assert small.significant and not small.regressed and not small.reproduced


def test_higher_is_better_metric_with_an_absolute_threshold() -> None:
    """Accuracy dropping by 0.05 is reproduced; a candidate at the old accuracy is GOOD."""
    rng = random.Random(6)

    def acc(centre: float, count: int) -> list[list[float]]:
        return [[centre + rng.gauss(0, 0.005)] for _ in range(count)]

    good, bad = acc(0.80, 8), acc(0.75, 8)
    result = reproduced(good, bad, ACCURACY)
    assert result.reproduced and result.effect < 0
    assert classify(acc(0.80, 6), good, bad, ACCURACY) is Verdict.GOOD
    assert classify(acc(0.75, 6), good, bad, ACCURACY) is Verdict.BAD
    # a 0.005 drop is below the absolute threshold of 0.01
    assert not compare(good, acc(0.795, 8), ACCURACY).regressed


def test_absolute_threshold_is_in_metric_units() -> None:
    """An absolute threshold of 20 ms ignores a significant 10 ms shift and counts a 30 ms one."""
    metric = MetricRule(direction=Direction.LOWER, threshold=Threshold(20.0, relative=False))
    good = [[100.0 + i] for i in range(8)]
    assert not reproduced(good, [[v[0] + 10] for v in good], metric).reproduced
    assert reproduced(good, [[v[0] + 30] for v in good], metric).reproduced


def test_too_few_processes_give_unclear_and_ask_for_more() -> None:
    """3 vs 3 processes cannot reach significance: the verdict is UNCLEAR, not a guess."""
    good, bad = [[100.0], [101.0], [99.0]], [[120.0], [121.0], [119.0]]
    verdict = classify([[120.5], [119.5], [120.2]], good, bad, LATENCY)
    assert verdict is Verdict.UNCLEAR
    assert needs_more(verdict, 3, REPEATS)


def test_a_candidate_between_the_endpoints_is_unclear() -> None:
    """Halfway between good and bad is significantly unlike both: never named either."""
    rng = random.Random(8)
    good, bad = trials(rng, 100, 10), trials(rng, 120, 10)
    assessment = assess(trials(rng, 110, 15), good, bad, LATENCY)
    assert assessment.verdict is Verdict.UNCLEAR
    assert assessment.vs_good.significant and assessment.vs_bad.significant


def test_needs_more_takes_trials_below_min_and_while_unclear_below_max() -> None:
    """More trials below repeats.min, and while UNCLEAR until repeats.max; never after."""
    assert needs_more(Verdict.GOOD, 2, REPEATS)
    assert not needs_more(Verdict.GOOD, 3, REPEATS)
    assert needs_more(Verdict.UNCLEAR, 14, REPEATS)
    assert not needs_more(Verdict.UNCLEAR, 15, REPEATS)


def test_reproduction_measures_endpoints_enough_for_candidates() -> None:
    """Endpoints get at least 6 processes (within max), then more only while not significant."""
    rng = random.Random(9)
    clear = reproduced(trials(rng, 100, 5), trials(rng, 130, 5), LATENCY)
    assert clear.significant
    assert reproduction_needs_more(clear, 5, REPEATS)
    assert not reproduction_needs_more(clear, 6, REPEATS)
    assert not reproduction_needs_more(clear, 4, TrialBudget(min=3, max=4))
    flat = reproduced(trials(rng, 100, 6), trials(rng, 100, 6), LATENCY)
    assert reproduction_needs_more(flat, 6, REPEATS) is (not flat.significant)


def _measure_endpoints(rng: random.Random) -> tuple[list[list[float]], list[list[float]]]:
    good, bad = trials(rng, 100, REPEATS.min), trials(rng, 110, REPEATS.min)
    while reproduction_needs_more(reproduced(good, bad, LATENCY), len(good), REPEATS):
        good.append(trial(rng, 100))
        bad.append(trial(rng, 110))
    return good, bad


def _adaptive_verdict(
    rng: random.Random, centre: float, good: list[list[float]], bad: list[list[float]]
) -> Verdict:
    candidate = trials(rng, centre, REPEATS.min)
    while True:
        verdict = classify(candidate, good, bad, LATENCY, CLASSIFY_ALPHA)
        if not needs_more(verdict, len(candidate), REPEATS):
            return verdict
        candidate.append(trial(rng, centre))


@pytest.mark.parametrize(
    ("centre", "wrong", "right"),
    [(100, Verdict.BAD, Verdict.GOOD), (110, Verdict.GOOD, Verdict.BAD)],
)
def test_adaptive_classification_never_names_the_wrong_side(
    centre: float, wrong: Verdict, right: Verdict
) -> None:
    """Over 200 simulated candidates (5% noise, 10% shift) none is judged the wrong side and
    nearly all resolve within repeats.max."""
    rng = random.Random(2024 + centre)
    verdicts = []
    for _ in range(200):
        good, bad = _measure_endpoints(rng)
        verdicts.append(_adaptive_verdict(rng, centre, good, bad))
    assert verdicts.count(wrong) == 0
    assert verdicts.count(right) >= 190
