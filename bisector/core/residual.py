"""After a verified culprit: is it all of its part's regression? Pure.

A part of the range with two steps whose middle level lies near one end (latency 10 ->
18 -> 40: 18 sits in the good end's third) is not split by the search. The one-step
posterior, and the lean rule's one-process verdicts, place the commits at 18 with the
good end, the culprit at 40 verifies against its parent at 18, and the run said `found`
(exit 0) with the first step, +80%, never named. A step of at least the threshold must
end as a culprit or an honest range (docs/judge.md).

So after a culprit is verified, each side of it is compared with its part's end on that
side: the parent with the good end, the culprit with the bad end, on every trial they
have. Where one is shifted the regressed way by half the threshold or more
(`_suspected`: the estimate alone, significant or not), the two are measured on and
tested for the whole threshold at two looks (`_second_step`); a regression shown there
makes that side a part of its own, bisected and verified like any other. A side that does
not show one costs those trials and changes nothing, so a lone step's verdict is not
given up on one noisy estimate (a test repeated after every pair, as the endpoints'
settling does, split lone steps: 1.3% of a bench case ended exit 4). Simulated
(bench/RESULTS.md, 1,000 bisections a model), a step was missed with exit 0 in 100% of
`uneven-steps` runs and 7.8% of `two-steps` runs without this check, 0.5% and 1.1% with
it; one-step ranges cost 0.1 to 0.6 executions more, with the same verdicts.
"""

from __future__ import annotations

from bisector.core import judge
from bisector.core.outcome import Part
from bisector.core.partsearch import Hunter
from bisector.core.stats import median
from bisector.core.types import Commit, Direction, MetricRule, Verdict

#: The confirming test's alpha, at each of its two looks: half the verification's, so the
#: two together keep its error rate (`judge.VERIFY_ALPHA`).
CONFIRM_ALPHA = judge.VERIFY_ALPHA / 2
#: Processes a side at the first look: 5 + 5 wholly apart is p = 0.004.
FIRST_LOOK = 5
#: The first suspicion, on the trials the two already have: an estimate of this much of
#: the threshold (the tests that follow ask for all of it).
SUSPECT_FRACTION = 0.5
#: Check beside each verified culprit (False: the search's placement stands; measured
#: against it in bench/simulate_cost.py, variant `no-residual`).
CHECK_BESIDE = True


def residual_parts(hunter: Hunter, ends: tuple[int, int], culprit: int) -> list[Part]:
    """The parts left to bisect beside a verified `culprit` of the part `ends`: (good end,
    parent] when the parent is already worse than the good end, (culprit, bad end] when the
    bad end is worse still than the culprit; none for a lone step."""
    lo, hi = ends
    parts: list[Part] = []
    if not CHECK_BESIDE:
        return parts
    for good, bad, between in ((lo, culprit - 1, culprit - 1), (culprit, hi, culprit)):
        if bad > good and _second_step(hunter, hunter.commits[good], hunter.commits[bad]):
            hunter.step("split", between, Verdict.UNCLEAR)
            parts += hunter.bisect(good, bad, [])
    return parts


def _second_step(hunter: Hunter, good: Commit, bad: Commit) -> bool:
    """Does `bad` regress from `good` by the threshold? Suspected on the estimate from the
    trials they have; then shown at `CONFIRM_ALPHA` at `FIRST_LOOK` processes a side, or,
    while the estimate still says so, at `repeats.max`: two looks, not one after every pair
    (a test repeated until it passes would pass beside a lone step too)."""
    sampler, rule, budget = hunter.sampler, hunter.rule, hunter.budget
    if not _suspected(sampler.samples(good), sampler.samples(bad), rule):
        return False
    for look in dict.fromkeys((min(max(FIRST_LOOK, budget.min), budget.max), budget.max)):
        for commit in (good, bad) * look:  # alternating, up to `look` trials each
            probe = sampler.probe
            if len(probe.trials(commit)) < look and not probe.untestable(commit):
                hunter.take(commit, "verify")
        gs, bs = sampler.samples(good), sampler.samples(bad)
        if _regressed(gs, bs, rule, CONFIRM_ALPHA):
            return True
        if not _regressed(gs, bs, rule, None):  # the estimate no longer says so
            return False
    return False


def _regressed(
    good: judge.Samples, bad: judge.Samples, rule: MetricRule, alpha: float | None
) -> bool:
    """`bad` worse than `good` by the threshold: shown at `alpha`, or estimated (None)."""
    if min(len(good), len(bad)) < 2:
        return False
    comparison = judge.compare(good, bad, rule, alpha=alpha or judge.REPRODUCE_ALPHA)
    return comparison.reproduced if alpha is not None else comparison.regressed


def _suspected(good: judge.Samples, bad: judge.Samples, rule: MetricRule) -> bool:
    """`bad` estimated worse than `good` by `SUSPECT_FRACTION` of the threshold: the
    parent's trials are biased towards the good end (the search placed it there on them,
    and an early verification stop favours low parent processes), so a 10% step read
    4-5% on them in half of the missed cases."""
    if min(len(good), len(bad)) < 2:
        return False
    comparison = judge.compare(good, bad, rule)
    g = judge.process_medians(good)
    worse_by = comparison.effect * (1.0 if rule.direction is Direction.LOWER else -1.0)
    return worse_by > 0 and worse_by >= SUSPECT_FRACTION * rule.threshold.min_shift(median(g))
