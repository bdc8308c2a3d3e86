"""ddmin: planted culprits are found, unresolvable subsets are grouped, tests are bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bisector.core.ddmin import Outcome, ddmin


def _bound(n: int) -> int:
    return n * n + 3 * n


@given(
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n - 1))
    )
)
def test_single_culprit_is_found(case: tuple[int, int]) -> None:
    """A single planted failing change is the whole answer, within the test bound."""
    n, culprit = case
    calls: list[tuple[int, ...]] = []

    def test(subset: tuple[int, ...]) -> Outcome:
        calls.append(subset)
        return Outcome.FAIL if culprit in subset else Outcome.PASS

    result = ddmin(list(range(n)), test)
    assert result.failing == (culprit,)
    assert len(calls) == len(set(calls)) <= _bound(n)
    assert result.interacting == (culprit,)


@given(
    st.integers(min_value=2, max_value=30).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), min_size=2, max_size=2))
    )
)
def test_pair_only_failing_together_is_found(case: tuple[int, set[int]]) -> None:
    """Two changes that only fail together come back as exactly that pair."""
    n, pair = case
    calls = 0

    def test(subset: tuple[int, ...]) -> Outcome:
        nonlocal calls
        calls += 1
        return Outcome.FAIL if pair <= set(subset) else Outcome.PASS

    result = ddmin(list(range(n)), test)
    assert set(result.failing) == pair
    assert set(result.interacting) == pair
    assert result.grouped == ()
    assert calls <= _bound(n)


@given(st.integers(min_value=3, max_value=20), st.data())
def test_unresolvable_dependency_is_grouped_not_blamed(n: int, data: st.DataObject) -> None:
    """A slow change that cannot install without another is returned with it, marked grouped."""
    slow, needed = data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))

    def test(subset: tuple[int, ...]) -> Outcome:
        if slow in subset and needed not in subset:
            return Outcome.UNRESOLVED
        return Outcome.FAIL if slow in subset else Outcome.PASS

    result = ddmin(list(range(n)), test)
    assert set(result.failing) == {slow, needed}
    assert result.interacting == (slow,)  # without the slow one the rest passes
    assert result.grouped == (needed,)  # without the needed one the rest does not resolve


def test_bad_input_is_refused() -> None:
    """An empty or duplicated change list is a ValueError."""
    with pytest.raises(ValueError):
        ddmin([], lambda _s: Outcome.FAIL)
    with pytest.raises(ValueError):
        ddmin([1, 1], lambda _s: Outcome.FAIL)
