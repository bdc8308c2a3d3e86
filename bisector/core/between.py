"""Where a commit sits between its part's ends: halfway, significantly between, or beyond
the bad end. Pure.

A regression with two steps puts the commits between them at a level between the range's
ends. The posterior search (`core.partsearch`) assumes one step, so such a commit moves
it hardly at all; the search and the verification (`core.verify`) both ask these two
questions and split the part where a commit lies significantly between its ends.
"""

from __future__ import annotations

from bisector.core import judge, sequential
from bisector.core.types import MetricRule


def split_point(
    parent: judge.Samples,
    culprit: judge.Samples,
    good: judge.Samples,
    bad: judge.Samples,
    rule: MetricRule,
    index: int,
) -> int | None:
    """For a verification (`core.verify`) of `index` against its parent: the index of the
    one whose trials lie significantly between the part's ends (`good`, `bad`), culprit
    first; the part holds a second step and is split there, as `PartSearch.measured` splits."""
    for at, side in ((index, culprit), (index - 1, parent)):
        if judge.assess(side, good, bad, rule).between:
            return at
    return None


def halfway(
    parent: judge.Samples, culprit: judge.Samples, good: judge.Samples, bad: judge.Samples
) -> bool:
    """Parent or culprit sits halfway between the part's ends (`sequential.in_middle`): a
    second step may put it there, which the one-step posterior cannot place, so its
    verification goes on until `split_point` says (simulated, giving such a pair up on the
    posterior alone verified the commit after a true step instead: bench/RESULTS.md)."""
    g, b = judge.process_medians(good), judge.process_medians(bad)
    if not g or not b:
        return False
    sides = (judge.process_medians(parent), judge.process_medians(culprit))
    return any(sequential.in_middle(side, g, b) for side in sides)


def worse_than_bad(
    candidate: judge.Samples, good: judge.Samples, bad: judge.Samples, rule: MetricRule
) -> bool:
    """Every process of the candidate (three or more) lies beyond the bad end
    (`sequential.beyond_bad`), and it is significantly worse than the bad end by the
    threshold: the commit is at least as bad as the bad end, and a later one takes part
    of it back (10 -> 20 -> 15). The search places it bad; the part ends there."""
    cand = judge.process_medians(candidate)
    g, b = judge.process_medians(good), judge.process_medians(bad)
    if len(cand) < 3 or not sequential.beyond_bad(cand, g, b):
        return False
    vs_bad = judge.assess(candidate, good, bad, rule).vs_bad
    return vs_bad.significant and vs_bad.regressed
