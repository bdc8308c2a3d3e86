"""Where a commit sits between its part's ends: halfway, or significantly between. Pure.

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
