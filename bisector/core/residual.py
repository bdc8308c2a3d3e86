"""After a verified culprit: is it all of its part's regression? Pure.

A part of the range with two steps whose middle level lies near one end (latency 10 ->
18 -> 40: 18 sits in the good end's third) is not split by the search. The one-step
posterior, and the lean rule's one-process verdicts, place the commits at 18 with the
good end, the culprit at 40 verifies against its parent at 18, and the run said `found`
(exit 0) with the first step, +80%, never named. A step of at least the threshold must
end as a culprit or an honest range (docs/judge.md).

So after a culprit is verified, each side of it is compared with its part's end on that
side: the parent with the good end, the culprit with the bad end, on every trial they
have. Where one is shifted the regressed way by at least the threshold (the
Hodges-Lehmann estimate, significant or not: a 10% first step under 3% process spread is
rarely significant on 4 + 4 processes), the two are measured on as a range's endpoints
are (`Sampler.settle_endpoints`, up to `repeats.max`), and a reproduced regression makes
that side a part of its own, bisected and verified like any other. A side that does not
reproduce costs those trials and changes nothing, so a lone step's verdict is not given
up on one noisy estimate. Simulated (bench/RESULTS.md, 1,000 bisections a model), a
step was missed with exit 0 in 100% of `uneven-steps` runs and 7.8% of `two-steps` runs
without this check, 2.1% of each with it, at +0.1 executions or less on one-step ranges.
"""

from __future__ import annotations

from bisector.core import judge
from bisector.core.outcome import Part
from bisector.core.partsearch import Hunter
from bisector.core.sampling import EndpointUnmeasurable
from bisector.core.types import Verdict

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
        if bad <= good:  # the culprit's parent is the good end, or it is the bad end
            continue
        g, b = hunter.commits[good], hunter.commits[bad]
        gs, bs = hunter.sampler.samples(g), hunter.sampler.samples(b)
        if min(len(gs), len(bs)) < 2:
            continue
        if not judge.compare(gs, bs, hunter.rule).regressed:  # the estimate alone: see above
            continue
        try:
            settled = hunter.sampler.settle_endpoints(g, b, "verify", provisional=False)
        except EndpointUnmeasurable:  # a side stopped giving the metric: nothing to split on
            continue
        if settled.reproduced:
            hunter.step("split", between, Verdict.UNCLEAR)
            parts += hunter.bisect(good, bad, [])
    return parts
