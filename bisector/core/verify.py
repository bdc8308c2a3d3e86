"""Verification of a culprit against its parent: found means verified. Pure.

    verify(probe, metric, rule, budget, parent, culprit, reproduction, take, *, reuse)
        -> Found

The parent and the culprit are measured, interleaved (the side going first alternates,
so a trend over the pairs hits both alike), until the non-parametric judge
(`judge.compare` at `judge.VERIFY_ALPHA`) shows the regression in the regressed
direction by at least the threshold, or its confidence interval rules one out, or
`repeats.max` fresh trials a side are spent. At least
`judge.smallest_workable_repeats(VERIFY_ALPHA)` (5) processes a side are compared.

**What is reused (`reuse=True`, the lean rule).** The search has usually measured the
culprit (its first BAD) and the parent (its last GOOD) already, or they are endpoints.
Those trials count towards the 5 a side, and fresh interleaved trials top them up, at
least `MIN_FRESH` a side. Why this stays sound: a wrong culprit needs the search to go
wrong first (measured by bench/simulate.py: a few % of searches under the worst noise
models), and the trials that misled it can be biased; so the verdict also needs the
*fresh* trials alone to show the shift in the regressed direction by at least the
threshold (their Hodges-Lehmann shift), which trials of two commits at the same level
rarely do. Without reuse every compared trial is fresh, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bisector.core import judge
from bisector.core.sampling import samples_of
from bisector.core.stats import median
from bisector.core.types import Commit, MetricRule, TrialBudget

if TYPE_CHECKING:
    from bisector.ports import Probe

#: Fresh trials a side, at least, when search trials are reused.
MIN_FRESH = 4


@dataclass(frozen=True)
class Found:
    """A candidate a part of the range narrowed to, with its verification's evidence."""

    index: int
    effect: float | None  # relative to the parent's median; None: not re-measured
    effect_abs: float | None  # in the metric's units
    share: float | None  # of the endpoints' total shift
    verified: bool
    confidence: float
    p_value: float | None
    evidence: judge.Comparison | None  # culprit - parent; None: could not re-measure
    trials: int  # trials per side compared
    note: str
    fresh: int = 0  # of them fresh (taken by the verification itself)


def fresh_regressed(parent: judge.Samples, culprit: judge.Samples, rule: MetricRule) -> bool:
    """The fresh trials alone show the regression: significant at `judge.REPRODUCE_ALPHA`
    (4 a side can reach it), in the regressed direction, by at least the threshold."""
    return judge.compare(parent, culprit, rule, alpha=judge.REPRODUCE_ALPHA).reproduced


def verify(
    probe: Probe,
    metric: str,
    rule: MetricRule,
    budget: TrialBudget,
    index: int,
    pair: tuple[Commit, Commit],
    reproduction: judge.Comparison,
    take: Callable[[Commit], None],
    *,
    reuse: bool = False,
) -> Found:
    """Measure parent and culprit (`pair`) until the judge settles (module docstring)."""
    parent, culprit = pair
    start = {c.sha: len(probe.trials(c)) for c in pair}
    base = {c.sha: 0 if reuse else start[c.sha] for c in pair}
    floor = max(budget.min, judge.smallest_workable_repeats(judge.VERIFY_ALPHA))
    cap = max(budget.max, floor)
    min_fresh = MIN_FRESH if reuse else floor
    comp: judge.Comparison | None = None
    verified = False
    n = fresh = rounds = 0
    while True:
        if probe.untestable(parent) or probe.untestable(culprit):
            break
        trials = [probe.trials(c) for c in pair]
        used = [t[base[c.sha] :] for c, t in zip(pair, trials, strict=True)]
        new = [t[start[c.sha] :] for c, t in zip(pair, trials, strict=True)]
        n, fresh = min(len(t) for t in used), min(len(t) for t in new)
        ps, cs = (samples_of(t, metric) for t in used)
        if len(ps) >= 2 and len(cs) >= 2:
            comp = judge.compare(ps, cs, rule, alpha=judge.VERIFY_ALPHA)
            fp, fc = (samples_of(t, metric) for t in new)
            verified = comp.reproduced and (
                not reuse or (len(fp) >= 2 and len(fc) >= 2 and fresh_regressed(fp, fc, rule))
            )
            baseline = median(judge.process_medians(ps))
            if (
                n >= floor
                and fresh >= min_fresh
                and (verified or judge.rules_out_regression(comp, rule, baseline))
            ):
                break
        if fresh >= cap:
            break
        # Top up the side that is short; once both have enough, one more of each, the
        # side going first alternating.
        order = pair if rounds % 2 == 0 else (culprit, parent)
        rounds += 1
        short = [
            c
            for c, u, f in zip(pair, used, new, strict=True)
            if len(u) < floor or len(f) < min_fresh
        ]
        for c in order:
            if not short or c in short:
                take(c)
    return found(index, comp, n, reproduction, verified, fresh)


def found(
    index: int,
    comp: judge.Comparison | None,
    n: int,
    reproduction: judge.Comparison,
    verified: bool | None = None,
    fresh: int | None = None,
) -> Found:
    """The `Found` of a verification that ended with `comp` on `n` trials a side."""
    fresh = n if fresh is None else fresh
    if comp is None:
        return Found(
            index,
            None,
            None,
            None,
            False,
            0.0,
            None,
            None,
            n,
            "the culprit or its parent could not be re-measured (unverified)",
            fresh,
        )
    verified = comp.reproduced if verified is None else verified
    if verified:
        note = "the regression reappears between parent and culprit in fresh trials"
    elif comp.significant and comp.improved or comp.effect * reproduction.effect < 0:
        note = "fresh trials show the change in the other direction: not a culprit (unverified)"
    else:
        note = "fresh trials of parent and culprit did not show the regression (unverified)"
    share = round(comp.effect / reproduction.effect, 3) if reproduction.effect else None
    return Found(
        index,
        comp.relative_effect,
        comp.effect,
        share,
        verified,
        round(1.0 - comp.p_value, 4),
        comp.p_value,
        comp,
        n,
        note,
        fresh,
    )
