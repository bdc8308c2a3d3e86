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

#: The alpha of `like_ends`: each fresh side against the end it should look like. Looser
#: than `judge.VERIFY_ALPHA` because it guards the test between the two, which already
#: held at that alpha; 5 fresh processes against an end's 4 can reach it.
ENDS_ALPHA = 0.05


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
    ends: tuple[Commit, Commit] | None = None,
) -> Found:
    """Measure parent and culprit (`pair`) until the judge settles (module docstring).

    `ends`: the (good, bad) ends of the part of the range the culprit was bisected in;
    when given, the pair must also look like them (`like_ends`).
    """
    parent, culprit = pair
    start = {c.sha: len(probe.trials(c)) for c in pair}
    floor = max(budget.min, judge.smallest_workable_repeats(judge.VERIFY_ALPHA))
    cap = max(budget.max, floor)
    comp: judge.Comparison | None = None
    n = rounds = 0
    alike = True
    while True:
        if probe.untestable(parent) or probe.untestable(culprit):
            break
        fresh = [probe.trials(c)[start[c.sha] :] for c in pair]
        n = min(len(t) for t in fresh)
        ps, cs = (samples_of(t, metric) for t in fresh)
        if len(ps) >= 2 and len(cs) >= 2:
            comp = judge.compare(ps, cs, rule, alpha=judge.VERIFY_ALPHA)
            baseline = median(judge.process_medians(ps))
            alike = ends is None or like_ends(ps, cs, *(_samples(probe, e, metric) for e in ends), rule)
            if n >= floor and (
                comp.reproduced and alike or judge.rules_out_regression(comp, rule, baseline)
            ):
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
    return found(index, comp, n, reproduction, alike)


def _samples(probe: Probe, commit: Commit, metric: str) -> list[list[float]]:
    return samples_of(probe.trials(commit), metric)


def like_ends(
    parent: judge.Samples,
    culprit: judge.Samples,
    good: judge.Samples,
    bad: judge.Samples,
    rule: MetricRule,
) -> bool:
    """The culprit's fresh trials look like the bad end and the parent's like the good one.

    Each significantly, by the threshold, at `ENDS_ALPHA`: the culprit worse than the good
    end, the parent better than the bad end (the judge's two-endpoint rule without its
    guard). Two commits at the same level that land apart by chance pass the test between
    them but not this one: one of them sits with the wrong end. Ends with fewer than two
    processes cannot tell, and do not block.
    """
    if len(good) < 2 or len(bad) < 2:
        return True
    as_bad = judge.assess(culprit, good, bad, rule, alpha=ENDS_ALPHA).vs_good
    as_good = judge.assess(parent, good, bad, rule, alpha=ENDS_ALPHA).vs_bad
    return as_bad.significant and as_bad.regressed and as_good.significant and as_good.improved


def found(
    index: int,
    comp: judge.Comparison | None,
    n: int,
    reproduction: judge.Comparison,
    alike: bool = True,
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
    verified = comp.reproduced and alike
    if verified:
        note = "the regression reappears between parent and culprit in fresh trials"
    elif comp.reproduced:
        note = (
            "fresh trials of parent and culprit differ, but not like the range's good and bad "
            "ends (unverified)"
        )
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
