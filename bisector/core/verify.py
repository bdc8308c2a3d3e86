"""Verification of a culprit against its parent: found means verified. Pure.

    verify(probe, metric, rule, budget, index, (parent, culprit), reproduction, take, ends)
        -> Found

The parent and the culprit are measured with fresh trials, strictly alternating (parent,
culprit, parent, culprit: a burst of load, a CPU hog that comes and goes, cannot hit one
side's processes without the other's between them; a slow trend adds one process's worth
of drift to the culprit, far below any threshold), until the culprit is
verified, or the confidence interval of their shift rules a regression out, or
`repeats.max` fresh trials a side are spent. Verified means both:

- **apart**: the non-parametric judge (`judge.compare` at `judge.VERIFY_ALPHA`) shows the
  regression between parent and culprit, in the regressed direction, by at least the
  threshold, on at least `judge.smallest_workable_repeats(VERIFY_ALPHA)` (5) a side; or,
  earlier, from `EARLY_PROCESSES` (3) a side (never below `repeats.min`), every culprit
  process is worse than every parent process by at least the threshold (`wholly_apart`);
- **like the ends** (`like_ends`): the culprit's fresh trials are significantly worse
  than the good end of the part of the range it was bisected in, and the parent's
  significantly better than its bad end, each by the threshold, at `ENDS_ALPHA`.

With the posterior search (`standing`), also **placed**: the culprit's position holds
`CONFIRM_MASS` of the posterior from every trial, these fresh ones too. The search hands
over at half of it, so the verification is where the search ends: when its fresh trials
move the posterior away (below `ABANDON_BELOW`), or the pair lies between the part's ends
(a second step: `Found.split_at`), it is given up (`Found.abandoned`) and the hunt searches
the part on (`partsearch.search_on`). Its later verifications get no early stop
(`shortcuts`).

**Why the ends too.** A search that went wrong narrows to two commits at the same level,
and their 5 + 5 fresh processes land completely apart by the threshold by chance (about
once in 250 such verifications with a 3% spread between processes; under a CPU hog that
comes and goes, when the episode hits one side more). Simulated (bench/simulate.py, 3,000
bisections per model) the apart test alone verified a wrong culprit in 3 of 3,000
`cpu-hog` runs and 1 of 3,000 `two-steps`. Two same-level commits sit together at one
end, so one of them fails the comparison with the other end: with both tests, 0 of 3,000
under every model. A true step passes it without extra trials unless a hog shifts the
fresh trials away from the ends; then more are taken, and if it still fails the culprit
is unverified (exit 4, which a busy machine should give).

**The early stop** costs the error rate nothing measurable and saves two pairs of
processes where the step is many spreads wide (the usual real case): 3 vs 3 completely
apart is p = 0.1 for the rank test alone (4 vs 4: 0.029), and demanding the gap between
the closest processes to be the threshold makes it far rarer for two commits at one
level; the ends' test guards it as well, at 3 a side by asking the fresh processes to lie
wholly apart from the end's (`EARLY_ENDS_ALPHA`). Simulated on the same 2,000 seeds per
model (bench/simulate_cost.py), stopping from 3 instead of 4 a side kept wrong exit 0 at
0 under every model and saved 1.9 executions a bisection (`normal`). A one-sided 4 + 5
test without those guards verified wrong culprits (bench/RESULTS.md).

**Nothing from the search is reused.** The search has usually measured the culprit and
its parent already, and topping those trials up would save about two processes. But the
search *selected* them: a one-process verdict (the lean rule, `core.sequential.LEAN`) is
decided by whichever process came, and when the search went wrong at the boundary it is
exactly those trials that make two commits at the same level look apart. Simulated,
topping up the search's trials verified wrong culprits (about 1 bisection in 300). The
search's trials still count for the search, and a verification after a re-bisection
compares only the trials taken since it started. The ends' trials are all of theirs:
they were not selected by the verdict under test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bisector.core import between, judge, posterior, sequential
from bisector.core.sampling import samples_of
from bisector.core.stats import median
from bisector.core.types import Commit, Direction, MetricRule, TrialBudget

if TYPE_CHECKING:
    from bisector.ports import Probe

#: The alpha of `like_ends`: each fresh side against the end it should look like. Looser
#: than `judge.VERIFY_ALPHA` because it guards the test between the two, which holds at
#: that alpha already; 4 fresh processes against an end's 4 can reach it (0.029).
ENDS_ALPHA = 0.05
#: Fresh processes a side from which a culprit wholly apart from its parent by the
#: threshold (and like the ends) is verified without the rank test's 5th (`wholly_apart`),
#: when `repeats.min` allows that few.
EARLY_PROCESSES = 3
#: The ends' alpha at an early stop on 3 fresh processes: 3 against an end's 4 cannot go
#: below p = 2 / C(7, 3) = 0.057, so this asks them to lie wholly apart from that end.
EARLY_ENDS_ALPHA = 0.06
#: With the posterior search's `standing`: verified only while the culprit's position holds
#: 90% of the posterior (from every trial), and given up (`Found.abandoned`: the part is
#: searched on) once it holds less than a fifth.
CONFIRM_MASS = 1 - posterior.EPSILON
ABANDON_BELOW = 0.2


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
    abandoned: bool = False  # the posterior moved away during it: search the part on
    split_at: int | None = None  # abandoned at a commit between the part's ends: split there


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
    standing: Callable[[], float] | None = None,
    shortcuts: bool = True,
) -> Found:
    """Measure parent and culprit (`pair`) until the judge settles (module docstring).

    `ends`: the (good, bad) ends of the part of the range the culprit was bisected in;
    when given, the pair must also look like them (`like_ends`).
    `standing`: the posterior search's mass at the culprit's position, read after each
    fresh pair (`CONFIRM_MASS`, `ABANDON_BELOW`); None: no posterior (other rules).
    `shortcuts`: the early stops below the rank test's 5 a side are allowed (False: the
    part's search already misled a verification, so a noisy part gets no shortcut).
    """
    parent, culprit = pair
    start = {c.sha: len(probe.trials(c)) for c in pair}  # the trials before the fresh ones
    floor = max(budget.min, judge.smallest_workable_repeats(judge.VERIFY_ALPHA))
    cap = max(budget.max, floor)
    comp: judge.Comparison | None = None
    n = 0
    alike = early = abandoned = False
    placed = True
    split_at: int | None = None
    while True:
        if probe.untestable(parent) or probe.untestable(culprit):
            break
        fresh = [probe.trials(c)[start[c.sha] :] for c in pair]
        n = min(len(t) for t in fresh)
        ps, cs = (samples_of(t, metric) for t in fresh)
        if len(ps) >= 2 and len(cs) >= 2:
            comp = judge.compare(ps, cs, rule, alpha=judge.VERIFY_ALPHA)
            baseline = median(judge.process_medians(ps))
            alike = ends is None or like_ends(ps, cs, *_samples(probe, ends, metric), rule)
            early = (
                shortcuts
                and budget.min <= len(ps) == len(cs)
                and EARLY_PROCESSES <= len(ps) < floor
                and wholly_apart(ps, cs, rule, baseline)
            )
            if early and len(ps) < 4 and ends is not None:  # see EARLY_ENDS_ALPHA
                alike = like_ends(ps, cs, *_samples(probe, ends, metric), rule, EARLY_ENDS_ALPHA)
            mass = 1.0 if standing is None else standing()
            placed = mass >= CONFIRM_MASS
            if standing is not None and ends is not None:
                good, bad = _samples(probe, ends, metric)
                split_at = between.split_point(ps, cs, good, bad, rule, index)
                lost = mass < ABANDON_BELOW and not between.halfway(ps, cs, good, bad)
                if split_at is not None or lost:
                    abandoned = True
                    break
            if early and alike and placed:
                break
            if n >= floor and (
                comp.reproduced
                and alike
                and placed
                or judge.rules_out_regression(comp, rule, baseline)
            ):
                break
        if n >= cap:
            break
        # One more of each, parent first: never two of one side in a row (see the module
        # docstring); a side behind (a failed trial) catches up first.
        for c in pair:
            if len(fresh[pair.index(c)]) <= n:
                take(c)
    out = found(index, comp, n, reproduction, alike, early, placed, abandoned)
    if split_at is None:
        return out
    note = "fresh trials lie between the part's ends (a second step): split there (unverified)"
    return dataclasses.replace(out, split_at=split_at, note=note)


def _gap(parent: judge.Samples, culprit: judge.Samples, rule: MetricRule) -> float:
    """How much the best culprit process is worse than the worst parent process."""
    sign = 1.0 if rule.direction is Direction.LOWER else -1.0
    ps = [sign * v for v in judge.process_medians(parent)]
    cs = [sign * v for v in judge.process_medians(culprit)]
    return min(cs) - max(ps)


def wholly_apart(
    parent: judge.Samples, culprit: judge.Samples, rule: MetricRule, baseline: float
) -> bool:
    """Every culprit process is worse than every parent process by at least the threshold."""
    gap = _gap(parent, culprit, rule)
    return gap >= max(rule.threshold.min_shift(baseline), 0.0) and gap > 0


def _samples(
    probe: Probe, ends: tuple[Commit, Commit], metric: str
) -> tuple[list[list[float]], list[list[float]]]:
    good, bad = ends
    return samples_of(probe.trials(good), metric), samples_of(probe.trials(bad), metric)


def like_ends(
    parent: judge.Samples,
    culprit: judge.Samples,
    good: judge.Samples,
    bad: judge.Samples,
    rule: MetricRule,
    alpha: float = ENDS_ALPHA,
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
    c = judge.assess(culprit, good, bad, rule, alpha=alpha)
    p = judge.assess(parent, good, bad, rule, alpha=alpha)
    worse = c.vs_good.significant and c.vs_good.regressed
    better = p.vs_bad.significant and p.vs_bad.improved
    # ...and neither sits halfway: in the middle third between the ends *and*
    # significantly past its own end towards the other (a pair between two steps). The
    # middle third alone would veto a true culprit whose few fresh processes drew low, the
    # test alone one whose bad end drew high (simulated: 0.3% of 30%-step bisections).
    g, b = judge.process_medians(good), judge.process_medians(bad)
    halfway = c.vs_bad.significant and c.vs_bad.improved
    halfway = halfway and sequential.in_middle(judge.process_medians(culprit), g, b)
    past = p.vs_good.significant and p.vs_good.regressed
    halfway = halfway or past and sequential.in_middle(judge.process_medians(parent), g, b)
    return worse and better and not halfway


def found(
    index: int,
    comp: judge.Comparison | None,
    n: int,
    reproduction: judge.Comparison,
    alike: bool = True,
    early: bool = False,
    placed: bool = True,
    abandoned: bool = False,
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
    verified = (comp.reproduced or early) and alike and placed and not abandoned
    if verified:
        note = "the regression reappears between parent and culprit in fresh trials"
    elif abandoned:
        note = "fresh trials placed the step elsewhere: the search went on (unverified)"
    elif (comp.reproduced or early) and alike:
        note = (
            "fresh trials show the regression, but the search does not place the step at "
            f"this commit with {CONFIRM_MASS:.0%} (unverified)"
        )
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
    # A parent whose median is 0 has no relative effect (the judge writes 0.0 for it).
    relative = None if comp.relative_effect == 0.0 and comp.effect != 0.0 else comp.relative_effect
    return Found(
        index,
        relative,
        comp.effect,
        share,
        verified,
        round(1.0 - comp.p_value, 4),
        comp.p_value,
        comp,
        n,
        note,
        abandoned,
    )
