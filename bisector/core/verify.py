"""Verification of a culprit against its parent: found means verified. Pure.

    verify(probe, metric, rule, budget, index, (parent, culprit), reproduction, take)
        -> Found

The parent and the culprit are measured with fresh trials, interleaved (the side going
first alternates, so a trend over the pairs hits both alike), until the non-parametric
judge (`judge.compare` at `judge.VERIFY_ALPHA`) shows the regression in the regressed
direction by at least the threshold, or its confidence interval rules one out, or
`repeats.max` fresh trials a side are spent; at least
`judge.smallest_workable_repeats(VERIFY_ALPHA)` (5) a side are compared.

**Nothing from the search is reused.** The search has usually measured the culprit and
its parent already, and topping those trials up would save about two processes. But the
search *selected* them: a one-process verdict (the lean rule, `core.sequential.LEAN`) is
decided by whichever process came, and when the search went wrong at the boundary it is
exactly those trials that make two commits at the same level look apart. Simulated
(bench/simulate.py, two-step ranges and a CPU hog), topping up the search's trials
verified wrong culprits (about 1 bisection in 300), and so did a one-sided test on 4 + 5
fresh processes (the search goes wrong more often under the lean rule, so the
verification's own error rate matters more); fresh trials at the two-sided 0.01 did not.
The search's trials still count for the search, and a verification after a re-bisection
compares only the trials taken since it started.
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


@dataclass(frozen=True)
class Found:
    """A candidate a part of the range narrowed to, with its verification's evidence."""

    index: int
    effect: float | None  # relative to the parent's median (fresh trials); None: not re-measured
    effect_abs: float | None  # in the metric's units
    share: float | None  # of the endpoints' total shift
    verified: bool
    confidence: float
    p_value: float | None
    evidence: judge.Comparison | None  # culprit - parent, fresh trials; None: could not re-measure
    trials: int  # fresh trials per side (the fewer of the two)
    note: str


def verify(
    probe: Probe,
    metric: str,
    rule: MetricRule,
    budget: TrialBudget,
    index: int,
    pair: tuple[Commit, Commit],
    reproduction: judge.Comparison,
    take: Callable[[Commit], None],
) -> Found:
    """Measure parent and culprit (`pair`) until the judge settles (module docstring)."""
    parent, culprit = pair
    start = {c.sha: len(probe.trials(c)) for c in pair}
    floor = max(budget.min, judge.smallest_workable_repeats(judge.VERIFY_ALPHA))
    cap = max(budget.max, floor)
    comp: judge.Comparison | None = None
    n = rounds = 0
    while True:
        if probe.untestable(parent) or probe.untestable(culprit):
            break
        fresh = [probe.trials(c)[start[c.sha] :] for c in pair]
        n = min(len(t) for t in fresh)
        ps, cs = (samples_of(t, metric) for t in fresh)
        if len(ps) >= 2 and len(cs) >= 2:
            comp = judge.compare(ps, cs, rule, alpha=judge.VERIFY_ALPHA)
            baseline = median(judge.process_medians(ps))
            if n >= floor and (comp.reproduced or judge.rules_out_regression(comp, rule, baseline)):
                break
        if n >= cap:
            break
        # One more of each, the side going first alternating; a side behind (a failed
        # trial) catches up first.
        order = pair if rounds % 2 == 0 else (culprit, parent)
        rounds += 1
        for c in order:
            if len(fresh[pair.index(c)]) <= n:
                take(c)
    return found(index, comp, n, reproduction)


def found(
    index: int,
    comp: judge.Comparison | None,
    n: int,
    reproduction: judge.Comparison,
) -> Found:
    """The `Found` of a verification that ended with `comp` on `n` trials a side."""
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
        )
    verified = comp.reproduced
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
    )
