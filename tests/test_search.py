"""The bisection's invariants, checked over every shape hypothesis can find."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bisector.core.search import Bisection, BisectResult, CoarseFine, Step, bisect, coarse_fine
from bisector.core.types import Verdict


class History:
    """A probe over a fixed truth: SKIP or UNCLEAR where untestable, else good before
    `first_bad` and bad from it on; it remembers every call."""

    def __init__(self, first_bad: int, untestable: dict[int, Verdict]) -> None:
        self.first_bad = first_bad
        self.untestable = untestable
        self.calls: list[int] = []

    def __call__(self, index: int) -> Verdict:
        self.calls.append(index)
        if index in self.untestable:
            return self.untestable[index]
        return Verdict.GOOD if index < self.first_bad else Verdict.BAD


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, History]:
    n = draw(st.integers(2, 2000))
    first_bad = draw(st.integers(1, n - 1))
    untestable: dict[int, Verdict] = {}
    if n > 2:
        kinds = st.sampled_from([Verdict.SKIP, Verdict.UNCLEAR])
        untestable = draw(st.dictionaries(st.integers(1, n - 2), kinds, max_size=60))
        if draw(st.booleans()):  # crowd the boundary, the hard case
            for i in range(max(1, first_bad - 3), min(n - 1, first_bad + 3)):
                untestable[i] = Verdict.SKIP
        if draw(st.booleans()):  # or make most of the range untestable
            rng = draw(st.randoms(use_true_random=False))
            density = draw(st.floats(0.0, 1.0))
            untestable |= {i: Verdict.SKIP for i in range(1, n - 1) if rng.random() < density}
    return n, History(first_bad, untestable)


def expected_range(n: int, history: History) -> tuple[int, int]:
    """The only honest answer: the nearest testable indices around the true first bad."""
    testable = [i for i in range(n) if i not in history.untestable]
    last_good = max(i for i in testable if i < history.first_bad)
    first_bad = min(i for i in testable if i >= history.first_bad)
    return last_good, first_bad


def check_honest(n: int, history: History, result: BisectResult) -> None:
    assert result.last_good < history.first_bad <= result.first_bad
    interior = set(range(result.last_good + 1, result.first_bad))
    assert set(result.untestable) == interior
    assert interior <= set(history.untestable)
    assert (result.last_good, result.first_bad) == expected_range(n, history)
    assert [s.index for s in result.steps] == history.calls
    assert len(set(history.calls)) == len(history.calls)
    assert all(0 < i < n - 1 for i in history.calls)


@given(histories())
@settings(max_examples=300, deadline=None)
def test_bisect_returns_the_culprit_or_an_honest_range(case: tuple[int, History]) -> None:
    """Whatever is untestable, the answer holds the true first bad and only untestables."""
    n, history = case
    result = bisect(n, history)
    check_honest(n, history, result)
    assert result.found == (result.first_bad == result.last_good + 1)


@given(histories())
@settings(max_examples=300, deadline=None)
def test_probe_count_is_logarithmic_plus_skips(case: tuple[int, History]) -> None:
    """Probes are at most ceil(log2 n) plus the skips met plus 2."""
    n, history = case
    result = bisect(n, history)
    skips = sum(1 for s in result.steps if s.verdict in (Verdict.SKIP, Verdict.UNCLEAR))
    assert len(result.steps) <= math.ceil(math.log2(n)) + skips + 2


@given(st.integers(2, 2000).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n - 1))))
@settings(max_examples=300, deadline=None)
def test_without_skips_the_first_bad_is_found_exactly(case: tuple[int, int]) -> None:
    """With every candidate testable the culprit is found in at most ceil(log2 n) probes."""
    n, first_bad = case
    history = History(first_bad, {})
    result = bisect(n, history)
    assert result.found
    assert result.first_bad == first_bad
    assert result.untestable == ()
    assert len(result.steps) <= math.ceil(math.log2(n))


def test_skipped_midpoint_is_stepped_around_to_a_neighbour() -> None:
    """A SKIP at the midpoint makes the next probe an adjacent candidate, not a guess."""
    bisection = Bisection(11)
    assert bisection.next_probe() == 5
    bisection.record(5, Verdict.SKIP)
    assert bisection.next_probe() in (4, 6)


def test_untestable_next_to_the_boundary_gives_a_range() -> None:
    """Two untestable commits right before the first bad leave a three-commit range."""
    history = History(7, {5: Verdict.SKIP, 6: Verdict.UNCLEAR})
    result = bisect(10, history)
    assert (result.last_good, result.first_bad, result.untestable) == (4, 7, (5, 6))
    assert not result.found


def test_two_candidates_need_no_probe() -> None:
    """Good and bad adjacent already: found with no step."""
    result = bisect(2, History(1, {}))
    assert result.found and result.steps == () and (result.last_good, result.first_bad) == (0, 1)


def test_record_refuses_an_index_outside_the_open_range() -> None:
    """Recording an endpoint, a settled index or a repeat is a caller bug."""
    bisection = Bisection(10)
    bisection.record(4, Verdict.GOOD)
    bisection.record(6, Verdict.SKIP)
    for index in (0, 3, 4, 6, 9, 12):
        with pytest.raises(ValueError):
            bisection.record(index, Verdict.BAD)


@given(histories(), st.integers(0, 30))
@settings(max_examples=200, deadline=None)
def test_resume_from_recorded_verdicts_continues_identically(
    case: tuple[int, History], cut: int
) -> None:
    """Replaying the first steps into a fresh Bisection gives the same next probe and end."""
    n, history = case
    full = bisect(n, history)
    prefix = full.steps[:cut]
    resumed = Bisection.resume(n, prefix)
    expected_next = full.steps[cut].index if cut < len(full.steps) else None
    assert resumed.next_probe() == expected_next
    while (index := resumed.next_probe()) is not None:
        resumed.record(index, history(index))
    assert resumed.result().steps == full.steps


@given(histories())
@settings(max_examples=200, deadline=None)
def test_prefetch_names_the_probes_after_good_and_after_bad(case: tuple[int, History]) -> None:
    """Whatever the current probe answers GOOD or BAD, the following probe was prefetched."""
    n, history = case
    bisection = Bisection(n)
    while (index := bisection.next_probe()) is not None:
        prefetch = bisection.candidates_to_prefetch()
        assert index not in prefetch and len(prefetch) <= 2
        verdict = history(index)
        bisection.record(index, verdict)
        following = bisection.next_probe()
        if verdict in (Verdict.GOOD, Verdict.BAD) and following is not None:
            assert following in prefetch


# --- coarse then fine -------------------------------------------------------------------


@st.composite
def tagged_histories(draw: st.DrawFn) -> tuple[int, list[int], History]:
    n, history = draw(histories())
    tags = draw(st.lists(st.integers(0, n - 1), max_size=40)) if n > 2 else []
    return n, tags, history


@given(tagged_histories())
@settings(max_examples=300, deadline=None)
def test_coarse_fine_gives_the_same_honest_answer(case: tuple[int, list[int], History]) -> None:
    """Bisecting tags first, then commits, ends at the same range as a plain bisection."""
    n, tags, history = case
    result = coarse_fine(n, tags, history)
    check_honest(n, history, result)


def test_coarse_pass_probes_only_tags_first() -> None:
    """With tags every 100 commits the first probes are tags, then commits between two."""
    n, tags = 1001, list(range(100, 1000, 100))
    history = History(537, {})
    result = coarse_fine(n, tags, history)
    assert result.found and result.first_bad == 537
    coarse = [s.index for s in result.steps if s.index in tags]
    assert [s.index for s in result.steps[: len(coarse)]] == coarse
    assert all(500 < s.index < 600 for s in result.steps[len(coarse) :])
    assert len(result.steps) <= math.ceil(math.log2(11)) + math.ceil(math.log2(101))


def test_coarse_untestable_tag_is_not_probed_again() -> None:
    """A tag that was skipped in the coarse pass stays skipped in the fine pass."""
    history = History(25, {20: Verdict.SKIP})
    result = coarse_fine(41, [10, 20, 30], history)
    assert history.calls.count(20) == 1
    assert result.found and result.first_bad == 25


def test_coarse_fine_without_tags_is_a_plain_bisection() -> None:
    """No tags inside the range: the same probes as `bisect`."""
    plain, staged = History(13, {}), History(13, {})
    assert bisect(40, plain).steps == coarse_fine(40, [0, 39], staged).steps


def test_coarse_fine_resumes_and_prefetches_in_commit_indices() -> None:
    """Steps recorded into a fresh CoarseFine continue where they stopped; prefetch hints
    are commit indices."""
    history = History(537, {})
    tags = list(range(100, 1000, 100))
    full = coarse_fine(1001, tags, history)
    for cut in range(len(full.steps)):
        search = CoarseFine(1001, tags)
        for step in full.steps[:cut]:
            search.record(step.index, step.verdict)
        assert search.next_probe() == full.steps[cut].index
        if cut + 1 < len(full.steps):
            assert full.steps[cut + 1].index in search.candidates_to_prefetch()


def probe_from(table: dict[int, Verdict]) -> Callable[[int], Verdict]:
    return table.__getitem__


def test_steps_record_every_verdict_in_order() -> None:
    """The result lists each probe with its verdict, in the order they were made."""
    table = {i: Verdict.GOOD for i in range(1, 8)} | {i: Verdict.BAD for i in range(8, 15)}
    table[7] = Verdict.SKIP
    result = bisect(16, probe_from(table))
    assert result.steps[0] == Step(7, Verdict.SKIP)
    assert [s.verdict for s in result.steps] == [table[s.index] for s in result.steps]
