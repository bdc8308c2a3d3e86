"""A sequential rule per candidate: Wald's SPRT between "like good" and "like bad".

The non-parametric rule (`judge.assess` at `CLASSIFY_ALPHA` = 0.01) cannot give any
verdict before a candidate has 4 processes against 6 per endpoint (the smallest exact
p-value of 3 vs 6 is 0.024), however far apart the endpoints are. A sequential test uses
what the endpoints already showed: where good and bad lie and how much one process
scatters around them. Each candidate process then moves a log-likelihood ratio towards
"like bad" or "like good", and the candidate is decided as soon as the ratio crosses one
of Wald's boundaries, log((1 - beta) / alpha) and log(beta / (1 - alpha)); a candidate on
an endpoint is typically decided after 2 processes when the endpoints are several spreads
apart, and a hard one keeps being measured up to `repeats.max`, as before.

**The model** is the normal location model on per-process medians (the judge's unit):
"like good" is N(median of good, s), "like bad" is N(median of bad, s), `s` the endpoints'
pooled between-process spread, estimated robustly (MAD about each endpoint's own median,
so a cold first process or a heavy tail does not inflate it) and never below
`MIN_SPREAD_FRACTION` of the gap, so a run of near-identical processes cannot make a single
one decisive. The likelihoods are contaminated (Huber's robust SPRT): a process is an
outlier with the share the endpoints showed (at least `MIN_OUTLIER_SHARE`), spread flat
over the range, so a process far from both endpoints (a cold start, a CPU hog beside the
benchmark) moves the ratio hardly at all instead of counting as a very bad one. And no
process moves it by more than 1 / `MIN_PROCESSES` of the way to a boundary.

**Both rules.** Where the non-parametric rule at `CLASSIFY_ALPHA` already has a verdict
(from `repeats.min` processes on), that verdict stands, so the sequential rule never
measures a candidate longer than the non-parametric one would; the SPRT only adds
earlier verdicts.

**The guard.** A crossing is only a proposal: the verdict counts when the non-parametric
rule agrees at `GUARD_ALPHA` (`judge.assess`: significant against the other endpoint, a
shift of at least the threshold, the median in the named endpoint's third). 2 processes
against 6 can reach p = 0.071, so the guard allows a verdict from the 2nd process; the
position third keeps a candidate halfway between the endpoints (a second regression step)
unclear however the ratio wanders. Otherwise the candidate stays UNCLEAR and the sampling
loop takes another trial, as with the non-parametric rule.

**The lean rule** (`LEAN`, the hunt's default) goes further: Wald's boundaries at 0.05,
one process may cross (when it alone lies in the named endpoint's third of the way, as
from two processes on), a spread widened less, and no non-parametric guard per
candidate. That guard moves to the end: a culprit is only ever named after fresh trials
verify it against its parent with the non-parametric test (`core.verify`), and a
failed verification re-bisects the part with `ESCALATED` (`core.hunt`). A wrong step
costs trials; a wrong culprit needs the verification fooled as well (measured: at most
0.1% of simulated bisections under every noise model, bench/RESULTS.md).

The error rates this buys are measured, not assumed: `bench/simulate.py` runs thousands of
simulated bisections per noise model (heavy tails, per-process offsets, a cold first
process, drift, a CPU hog, two steps) with the rules side by side; bench/RESULTS.md has
the table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bisector.core import judge
from bisector.core.stats import median
from bisector.core.types import MetricRule, TrialBudget, Verdict

SPRT_ALPHA = 0.001  # P(the ratio says "like bad" | the candidate is like good)
SPRT_BETA = 0.001  # P(the ratio says "like good" | the candidate is like bad)
GUARD_ALPHA = 0.1
MIN_PROCESSES = 2  # a verdict never rests on one process
MIN_SPREAD_FRACTION = 1 / 8
SMALL_SAMPLE_WIDENING = 4.0
OUTLIER_SPREADS = 4.0  # a process this many spreads from its endpoint is an outlier
MIN_OUTLIER_SHARE = 0.02  # assume outliers happen even when the endpoints showed none
MAX_OUTLIER_SHARE = 0.3
#: Which ends a process beyond is read as lying at (`_within_ends`): the good end only. A
#: process worse than the bad end may be a CPU hog's, and the contaminated model must
#: keep counting it for little (moving those too cost 7 points of right verdicts under
#: `cpu-hog` and 47 under `cold-first`, bench/RESULTS.md); nothing makes a process
#: better than the good end but the commit's own level.
BEYOND_ENDS: tuple[str, ...] = ("good",)
_MAD_TO_SD = 1.4826  # MAD of a normal sample times this estimates its standard deviation


@dataclass(frozen=True)
class SprtRule:
    """The knobs of one sequential rule (see the module docstring and `LEAN`).

    `guard_alpha` None: no non-parametric guard per candidate, only the position guard
    (the candidate's median in the named endpoint's third); the culprit's verification
    (`core.hunt`) is then the non-parametric guard. `classic_first`: the non-parametric
    rule's verdict stands where it has one.
    """

    alpha: float = SPRT_ALPHA
    beta: float = SPRT_BETA
    min_processes: int = MIN_PROCESSES
    guard_alpha: float | None = GUARD_ALPHA
    classic_first: bool = True
    widening: float = SMALL_SAMPLE_WIDENING
    single_fraction: float = judge.GUARD_FRACTION  # the position guard for one process


#: The rule of `sequential: True` (measured in bench/RESULTS.md as "sequential").
GUARDED = SprtRule()
#: The hunt's default ("lean"): one process decides a candidate when it alone crosses a
#: boundary at alpha = beta = 0.05 and lies in the named endpoint's third of the way (the
#: position guard of two processes and more; it was a fifth for one process until issue
#: 12's last change: the third is cheaper and more often right in simulation,
#: bench/RESULTS.md "Trimmed rules"). A wrong step is caught by the culprit's
#: verification against its parent, and a failed verification re-bisects its part with
#: `ESCALATED` (bisector/core/hunt.py); the wrong exit 0s left are measured there too.
LEAN = SprtRule(
    alpha=0.05,
    beta=0.05,
    min_processes=1,
    guard_alpha=None,
    classic_first=False,
    widening=2.0,
)
#: After a failed verification: two processes at least, Wald's 0.001 boundaries.
ESCALATED = SprtRule(min_processes=2, guard_alpha=None, classic_first=False)


@dataclass(frozen=True)
class Evidence:
    """The sequential test's state for one candidate: the summed log-likelihood ratio
    (positive: like bad) against Wald's boundaries, and the spread it was computed with."""

    llr: float
    upper: float
    lower: float
    spread: float

    @property
    def proposal(self) -> Verdict:
        """BAD / GOOD once a boundary is crossed, else UNCLEAR."""
        if self.llr >= self.upper:
            return Verdict.BAD
        if self.llr <= self.lower:
            return Verdict.GOOD
        return Verdict.UNCLEAR


def boundaries(alpha: float = SPRT_ALPHA, beta: float = SPRT_BETA) -> tuple[float, float]:
    """Wald's (lower, upper) boundaries of the log-likelihood ratio."""
    if not (0 < alpha < 1 and 0 < beta < 1 and alpha + beta < 1):
        raise ValueError("need 0 < alpha, beta and alpha + beta < 1")
    return math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha)


def pooled_spread(
    good: Sequence[float], bad: Sequence[float], widening: float = SMALL_SAMPLE_WIDENING
) -> float:
    """The between-process spread of the endpoints' per-process medians, robustly: the
    MAD of each about its own median, pooled, scaled to a standard deviation, widened by
    `1 + SMALL_SAMPLE_WIDENING / n` for the n processes it rests on (an estimate from a
    dozen processes is often too small, and a too small spread makes two processes look
    decisive: simulated, this halved the wrong steps under 3% process offsets), and never
    below `MIN_SPREAD_FRACTION` of the gap between the endpoints' medians."""
    mg, mb = median(good), median(bad)
    deviations = [abs(x - mg) for x in good] + [abs(x - mb) for x in bad]
    widen = 1 + widening / len(deviations)
    return max(_MAD_TO_SD * median(deviations) * widen, MIN_SPREAD_FRACTION * abs(mb - mg))


def outlier_share(good: Sequence[float], bad: Sequence[float], spread: float) -> float:
    """How often a process is an outlier (beyond `OUTLIER_SPREADS` spreads from its
    endpoint's median) at the endpoints, never below `MIN_OUTLIER_SHARE`."""
    mg, mb = median(good), median(bad)
    far = sum(abs(x - mg) > OUTLIER_SPREADS * spread for x in good)
    far += sum(abs(x - mb) > OUTLIER_SPREADS * spread for x in bad)
    return min(MAX_OUTLIER_SHARE, max(MIN_OUTLIER_SHARE, far / (len(good) + len(bad))))


def evidence(
    candidate: Sequence[float],
    good: Sequence[float],
    bad: Sequence[float],
    alpha: float = SPRT_ALPHA,
    beta: float = SPRT_BETA,
    min_processes: int = MIN_PROCESSES,
    widening: float = SMALL_SAMPLE_WIDENING,
) -> Evidence:
    """The SPRT over the candidate's per-process medians (see the module docstring)."""
    lower, upper = boundaries(alpha, beta)
    spread = pooled_spread(good, bad, widening)
    cap = upper / min_processes  # so that no fewer than min_processes can cross
    llr = sum(process_llrs(candidate, good, bad, spread, cap))
    return Evidence(llr, upper, lower, spread)


def process_llrs(
    candidate: Sequence[float],
    good: Sequence[float],
    bad: Sequence[float],
    spread: float,
    cap: float,
) -> list[float]:
    """Each process's log-likelihood ratio "like bad" over "like good" (the module
    docstring's contaminated normal model), clipped to +-`cap`; all 0 when the endpoints do
    not differ."""
    mg, mb = median(good), median(bad)
    if mg == mb or spread <= 0:  # the endpoints do not differ: nothing to decide between
        return [0.0] * len(candidate)
    share = outlier_share(good, bad, spread)
    # The outliers' density: flat over the endpoints' span and some spreads beyond it.
    flat = share / (abs(mb - mg) + 2 * OUTLIER_SPREADS * spread)
    norm = (1 - share) / (spread * math.sqrt(2 * math.pi))
    out = []
    for x in candidate:
        x = _within_ends(x, mg, mb)
        like_bad = norm * math.exp(-0.5 * ((x - mb) / spread) ** 2) + flat
        like_good = norm * math.exp(-0.5 * ((x - mg) / spread) ** 2) + flat
        out.append(max(-cap, min(cap, math.log(like_bad / like_good))))
    return out


def _within_ends(x: float, good: float, bad: float) -> float:
    """`x` moved to the end it lies beyond (`BEYOND_ENDS`): a process better than the good
    end is at least as good as it. Unmoved, a level far beyond the good end (an improvement
    inside the range: 10 -> 5 -> 12) is as unlikely under both ends, its ratio 0 however
    often it is measured, and the part is never placed (QA: exit 4 with the improvement
    commit as the range's first bad)."""
    toward_bad = 1.0 if bad > good else -1.0
    if "good" in BEYOND_ENDS and (x - good) * toward_bad < 0:
        return good
    if "bad" in BEYOND_ENDS and (x - bad) * toward_bad > 0:
        return bad
    return x


def decide(
    candidate: judge.Samples,
    good: judge.Samples,
    bad: judge.Samples,
    metric: MetricRule,
    repeats: TrialBudget,
    rule: SprtRule = GUARDED,
) -> Verdict:
    """The non-parametric rule's verdict when it has one (from `repeats.min` processes on,
    as `judge.needs_more` allows; `rule.classic_first`); else GOOD / BAD when the SPRT
    crossed a boundary and the guard agrees (the non-parametric rule at
    `rule.guard_alpha`, or without one the position guard); else UNCLEAR. Never a
    verdict on fewer than `rule.min_processes` processes."""
    cand = judge.process_medians(candidate)
    if len(cand) < rule.min_processes:
        return Verdict.UNCLEAR
    if rule.classic_first and len(cand) >= repeats.min:
        classic = judge.assess(candidate, good, bad, metric).verdict
        if classic is not Verdict.UNCLEAR:
            return classic
    good_m, bad_m = judge.process_medians(good), judge.process_medians(bad)
    proposal = evidence(
        cand, good_m, bad_m, rule.alpha, rule.beta, rule.min_processes, rule.widening
    ).proposal
    if proposal is Verdict.UNCLEAR:
        return proposal
    if rule.guard_alpha is None:
        fraction = rule.single_fraction if len(cand) == 1 else judge.GUARD_FRACTION
        agrees = position_agrees(proposal, cand, good_m, bad_m, fraction)
        return proposal if agrees else Verdict.UNCLEAR
    guard = judge.assess(candidate, good, bad, metric, alpha=rule.guard_alpha).verdict
    return proposal if guard is proposal else Verdict.UNCLEAR


def position_agrees(
    proposal: Verdict,
    cand: Sequence[float],
    good: Sequence[float],
    bad: Sequence[float],
    fraction: float = judge.GUARD_FRACTION,
) -> bool:
    """The candidate's median lies in the proposed endpoint's third of the way between
    the endpoints' medians (`judge.GUARD_FRACTION`): a candidate halfway between them (a
    second regression step) is never called like either."""
    mg, mb = median(good), median(bad)
    if mg == mb:
        return False
    position = (median(cand) - mg) / (mb - mg)
    if proposal is Verdict.BAD:
        return position > 1 - fraction
    return position < fraction


def beyond_bad(
    cand: Sequence[float],
    good: Sequence[float],
    bad: Sequence[float],
    fraction: float = judge.GUARD_FRACTION,
) -> bool:
    """Every one of the candidate's processes (two or more) lies beyond the bad end by
    `fraction` of the way between the ends' medians: the commit itself is worse than the
    bad end (an overshoot a later commit takes partly back: 10 -> 20 -> 15), not one cold
    or hogged process of it, which `BEYOND_ENDS` keeps counting for little."""
    mg, mb = median(good), median(bad)
    if mg == mb or len(cand) < 2:
        return False
    return all((x - mg) / (mb - mg) > 1 + fraction for x in cand)


def in_middle(cand: Sequence[float], good: Sequence[float], bad: Sequence[float]) -> bool:
    """The candidate's median lies in neither endpoint's third (`position_agrees`): halfway
    between the ends, where a second regression step would put it."""
    return not (
        position_agrees(Verdict.GOOD, cand, good, bad)
        or position_agrees(Verdict.BAD, cand, good, bad)
    )


def needs_more(
    verdict: Verdict, n_processes: int, repeats: TrialBudget, rule: SprtRule = GUARDED
) -> bool:
    """Take another trial of a candidate? Below `rule.min_processes`; then while unclear
    and below repeats.max. (`repeats.min` is the floor of the non-parametric rule, which
    cannot decide sooner; this rule can.)"""
    if n_processes < min(rule.min_processes, repeats.max):
        return True
    return verdict is Verdict.UNCLEAR and n_processes < repeats.max
