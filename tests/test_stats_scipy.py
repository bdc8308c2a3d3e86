"""bisector's pure-Python statistics agree with scipy.stats on random samples.

bisector keeps its own Mann-Whitney, Kolmogorov-Smirnov and SPRT arithmetic so that the
CLI starts without importing scipy; these tests hold them to the well-kept library
(scipy is in the `test` extra only).
"""

from __future__ import annotations

import math
import random
import warnings

import pytest

from bisector.core import sequential, stats

scipy_stats = pytest.importorskip("scipy.stats")

CASES = 300


def _pairs(
    seed: int, low: int, high: int, *, ties: bool = False
) -> list[tuple[list[float], list[float]]]:
    """Random sample pairs of sizes low..high, shifted by 0, 1 or 2 (rounded for ties)."""
    rng = random.Random(seed)
    out = []
    for _ in range(CASES):
        n, m = rng.randint(low, high), rng.randint(low, high)
        shift = rng.choice((0.0, 1.0, 2.0))
        x = [rng.gauss(0, 1) for _ in range(n)]
        y = [rng.gauss(shift, 1) for _ in range(m)]
        if ties:
            x, y = [float(round(v)) for v in x], [float(round(v)) for v in y]
        out.append((x, y))
    return out


def test_mann_whitney_exact_p_matches_scipy() -> None:
    """Without ties and small samples, the exact two-sided MWU p-value equals scipy's."""
    for x, y in _pairs(1, 1, 12):
        ours = stats.mann_whitney_p(x, y)
        theirs = scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue
        assert ours == pytest.approx(theirs, abs=1e-12), (x, y)
        assert stats.mann_whitney_u(x, y) == scipy_stats.mannwhitneyu(x, y).statistic


def test_mann_whitney_with_ties_matches_scipy_normal_approximation() -> None:
    """With ties (or large samples) the tie- and continuity-corrected normal p matches scipy's."""
    for x, y in [*_pairs(2, 2, 12, ties=True), *_pairs(3, 51, 70)]:
        if not stats._has_ties([*x, *y]) and len(x) * len(y) <= stats._EXACT_MAX_PAIRS:
            continue  # exact there: the test above
        theirs = scipy_stats.mannwhitneyu(
            x, y, alternative="two-sided", method="asymptotic", use_continuity=True
        ).pvalue
        assert stats.mann_whitney_p(x, y) == pytest.approx(theirs, abs=1e-9), (x, y)


def test_min_p_value_is_scipys_p_of_complete_separation() -> None:
    """The smallest possible p-value of n vs m is scipy's exact p of separated samples."""
    for n in range(1, 9):
        for m in range(1, 9):
            x, y = [float(i) for i in range(n)], [float(100 + j) for j in range(m)]
            theirs = scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue
            assert stats.min_p_value(n, m) == pytest.approx(theirs, abs=1e-12)


def test_ks_exact_p_matches_scipy() -> None:
    """Without ties, the exact two-sample KS p-value equals scipy's exact one."""
    for x, y in _pairs(4, 1, 12):
        theirs = scipy_stats.ks_2samp(x, y, method="exact").pvalue
        assert stats.ks_p(x, y) == pytest.approx(theirs, abs=1e-12), (x, y)


def test_ks_with_ties_is_never_smaller_than_scipys_exact() -> None:
    """With ties the exact count is conservative: never a smaller p-value than scipy's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for x, y in _pairs(5, 2, 12, ties=True):
            theirs = scipy_stats.ks_2samp(x, y, method="exact").pvalue
            assert stats.ks_p(x, y) >= theirs - 1e-12, (x, y)


def test_ks_asymptotic_p_is_close_to_scipys() -> None:
    """For large samples the Kolmogorov tail (Stephens' correction) is within 0.03 of scipy's."""
    for x, y in _pairs(6, 51, 80):
        theirs = scipy_stats.ks_2samp(x, y, method="asymp").pvalue
        assert stats.ks_p(x, y) == pytest.approx(theirs, abs=0.03), (x, y)


def _with_u(n: int, m: int, u: int) -> tuple[list[float], list[float]]:
    """n vs m values whose Mann-Whitney U (pairs with x > y) is exactly `u`."""
    y = [float(j) for j in range(1, m + 1)]
    x = []
    for _ in range(n):
        below = min(m, u)  # this x lies above `below` of the y values
        u -= below
        x.append(below + 0.5)
    return x, y


def test_hodges_lehmann_critical_value_matches_scipys_exact_distribution() -> None:
    """The HL interval's order statistic k is where scipy's exact P(U <= k) passes alpha / 2."""
    for n in range(3, 11):
        for m in range(3, 11):
            k = stats._critical_u(n, m, 0.95)
            if k == 0:  # too few values to bound the shift: P(U = 0) itself exceeds 2.5%
                x, y = _with_u(n, m, 0)
                assert (
                    scipy_stats.mannwhitneyu(x, y, alternative="less", method="exact").pvalue
                    > 0.025
                )
                continue
            below = _with_u(n, m, k - 1)
            at = _with_u(n, m, k)
            assert stats.mann_whitney_u(*below) == k - 1
            p_below = scipy_stats.mannwhitneyu(*below, alternative="less", method="exact").pvalue
            p_at = scipy_stats.mannwhitneyu(*at, alternative="less", method="exact").pvalue
            assert p_below <= 0.025 < p_at, (n, m, k)


def test_equivalence_bound_critical_value_matches_scipys_exact_distribution() -> None:
    """At 90% (the equivalence check's one-sided 95% bound, core.nullcheck) k is where
    scipy's exact P(U <= k) passes 5% (as the code computes it: 3 vs 3's 1/20 is just above)."""
    half = (1 - 0.90) / 2
    for n in range(3, 16):
        for m in range(3, 16):
            k = stats._critical_u(n, m, 0.90)
            below, at = _with_u(n, m, max(k - 1, 0)), _with_u(n, m, k)
            p_at = scipy_stats.mannwhitneyu(*at, alternative="less", method="exact").pvalue
            if k == 0:
                assert p_at > half, (n, m)
                continue
            p_below = scipy_stats.mannwhitneyu(*below, alternative="less", method="exact").pvalue
            assert p_below <= half < p_at, (n, m, k)


def test_u_distribution_matches_scipys_exact_cdf() -> None:
    """The counted null distribution of U gives scipy's exact one-sided p-values."""
    rng = random.Random(8)
    for _ in range(80):
        n, m = rng.randint(1, 9), rng.randint(1, 9)
        x = [rng.gauss(0, 1) for _ in range(n)]
        y = [rng.gauss(0.5, 1) for _ in range(m)]
        u = int(stats.mann_whitney_u(x, y))
        counts = stats.u_distribution(n, m)
        ours = sum(counts[: u + 1]) / math.comb(n + m, n)  # P(U <= u)
        theirs = scipy_stats.mannwhitneyu(x, y, alternative="less", method="exact").pvalue
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_median_matches_scipy() -> None:
    """The median of odd and even samples equals numpy's, through scipy."""
    rng = random.Random(9)
    for _ in range(CASES):
        values = [rng.gauss(0, 1) for _ in range(rng.randint(1, 15))]
        assert stats.median(values) == pytest.approx(
            float(scipy_stats.scoreatpercentile(values, 50))
        )


def test_sprt_ratio_is_the_contaminated_normal_log_likelihood_ratio() -> None:
    """The SPRT's summed log-likelihood ratio equals one built from scipy.stats.norm (a
    process better than the good end read at it)."""
    rng = random.Random(10)
    for _ in range(100):
        good = [100 + rng.gauss(0, 2) for _ in range(rng.randint(4, 10))]
        bad = [110 + rng.gauss(0, 2) for _ in range(rng.randint(4, 10))]
        cand = [rng.choice((90, 100, 110, 125)) + rng.gauss(0, 2) for _ in range(rng.randint(1, 6))]
        ev = sequential.evidence(cand, good, bad)
        mg, mb = stats.median(good), stats.median(bad)
        s = sequential.pooled_spread(good, bad)
        share = sequential.outlier_share(good, bad, s)
        flat = share / (abs(mb - mg) + 2 * sequential.OUTLIER_SPREADS * s)
        cap = ev.upper / sequential.MIN_PROCESSES
        expected = 0.0
        for c in cand:
            c = max(c, mg) if mb > mg else min(c, mg)  # better than good: at good (BEYOND_ENDS)
            lb = (1 - share) * scipy_stats.norm.pdf(c, mb, s) + flat
            lg = (1 - share) * scipy_stats.norm.pdf(c, mg, s) + flat
            expected += max(-cap, min(cap, math.log(lb / lg)))
        assert ev.llr == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert ev.spread == s
