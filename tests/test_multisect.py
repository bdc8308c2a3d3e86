"""The pure multisection: K points a round, rounds to the culprit, moot points, the hunt over it."""

from __future__ import annotations

import math

import pytest

from bisector.core.hunt import hunt
from bisector.core.multisect import (
    MultiCoarseFine,
    Multisection,
    multisection_factory,
    rounds_bound,
    rounds_to_culprit,
    split_points,
)
from bisector.core.search import Bisection
from bisector.core.types import Status, Verdict
from tests.test_hunt import BUDGET, COMMITS, METRIC, RULE, FakeProbe, steps_at


def test_split_points_cut_the_untested_into_k_plus_one_near_equal_parts() -> None:
    """K points leave K+1 gaps whose sizes differ by at most one."""
    untested = list(range(1, 64))
    for k in (1, 2, 3, 7):
        points = split_points(untested, k)
        assert len(points) == k
        edges = [0, *points, 64]
        gaps = [b - a - 1 for a, b in zip(edges, edges[1:], strict=False)]
        assert max(gaps) - min(gaps) <= 1, (k, gaps)


def test_one_point_a_round_is_the_bisection() -> None:
    """K = 1 probes exactly what `search.Bisection` probes, verdict for verdict."""
    for culprit in (1, 7, 20, 31):
        multi, plain = Multisection(32, 1), Bisection(32)
        while (index := plain.next_probe()) is not None:
            assert multi.next_probe() == index
            verdict = Verdict.BAD if index >= culprit else Verdict.GOOD
            plain.record(index, verdict)
            multi.record(index, verdict)
        assert multi.next_probe() is None
        assert multi.result().first_bad == plain.result().first_bad == culprit


@pytest.mark.parametrize("n", [64, 256])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_every_culprit_is_found_within_the_round_bound(n: int, k: int) -> None:
    """For every first-bad position the rounds stay within ceil(log_{K+1} n) + 2."""
    bound = math.ceil(math.log(n, k + 1) - 1e-9)
    assert rounds_bound(n, k) == bound
    for culprit in range(1, n):
        rounds, result = rounds_to_culprit(n, k, culprit)
        assert result.found and result.first_bad == culprit
        assert rounds <= bound + 2, (n, k, culprit, rounds)


def test_a_bad_point_makes_the_points_above_it_moot() -> None:
    """After BAD at the lowest point of a round the round's other points no longer matter."""
    search = Multisection(64, 3)
    first = search.next_probe()
    ahead = search.candidates_to_prefetch()
    assert first is not None and first in ahead and len(ahead) == 3
    search.record(first, Verdict.BAD)
    assert set(search.moot(ahead)) == set(ahead)
    assert all(i < first for i in search.candidates_to_prefetch())


def test_the_last_point_of_a_round_prefetches_the_next_round() -> None:
    """With one point pending the prefetch list holds the next round's points after either verdict."""
    search = Multisection(64, 3)
    points = search.candidates_to_prefetch()
    for index in points[:-1]:
        search.record(index, Verdict.GOOD)
    ahead = search.candidates_to_prefetch()
    assert ahead[0] == points[-1] and len(ahead) > 1
    assert all(points[-2] < i < 63 for i in ahead)


def test_untestable_points_are_stepped_around_to_an_honest_range() -> None:
    """SKIP points are never guessed: a skip next to the boundary leaves a range of two."""
    search = Multisection(20, 3)
    while (index := search.next_probe()) is not None:
        verdict = Verdict.SKIP if index == 9 else Verdict.BAD if index >= 10 else Verdict.GOOD
        search.record(index, verdict)
    result = search.result()
    assert (result.last_good, result.first_bad, result.untestable) == (8, 10, (9,))


def test_tags_are_multisected_first() -> None:
    """Release tags are the first round's candidates; the fine pass stays between two tags."""
    search = MultiCoarseFine(40, [10, 20, 30], 3)
    assert search.phase == "coarse"
    assert set(search.candidates_to_prefetch()) == {10, 20, 30}
    while (index := search.next_probe()) is not None:
        search.record(index, Verdict.BAD if index >= 23 else Verdict.GOOD)
        if search.phase == "fine":
            assert all(20 < i < 30 for i in search.candidates_to_prefetch())
    assert search.result().first_bad == 23


def test_the_hunt_over_a_multisection_finds_and_verifies_the_culprit() -> None:
    """The pure hunt with K = 3 names the same culprit as with bisection."""
    probe = FakeProbe(steps_at((13, 1.3)))
    result = hunt(COMMITS, [], probe, METRIC, RULE, BUDGET, search=multisection_factory(3))
    assert result.status is Status.FOUND
    assert [f.index for f in result.culprits] == [13]
    plain = hunt(COMMITS, [], FakeProbe(steps_at((13, 1.3))), METRIC, RULE, BUDGET)
    assert [f.index for f in plain.culprits] == [13]
