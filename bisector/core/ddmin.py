"""Delta debugging (Zeller and Hildebrandt's ddmin) over a list of changes, pure.

`ddmin(changes, test)` finds a 1-minimal failing subset: `test` says FAIL for it and
PASS or UNRESOLVED for every subset with one change fewer. The whole list is taken to
FAIL and the empty one to PASS (the caller checked both ends, as the bisection does).

UNRESOLVED is the answer for a subset that cannot be built (the resolver cannot install
an upgraded package without another one's new version) or whose measurement is unclear.
It never counts as failing, so such a subset is never chosen; a change that cannot be
removed because the rest would not resolve stays in the result, and `grouped` names it:
it is grouped with the others, not blamed (`DdminResult.interacting` are the ones whose
removal made the failure go away, PASS, so they really matter).

Every subset is tested at most once (answers are cached), and the tests are bounded by
the classic ddmin bound, about n^2 + 3n for n changes, and by 2 log2 n + O(1) for a
single failing change in the usual case.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class Outcome(enum.Enum):
    FAIL = "fail"  # the regression is there (bad)
    PASS = "pass"  # it is not (good)
    UNRESOLVED = "unresolved"  # cannot build, or the measurement is unclear


@dataclass(frozen=True)
class Trial(Generic[T]):
    """One test made, in order."""

    subset: tuple[T, ...]
    outcome: Outcome


@dataclass(frozen=True)
class DdminResult(Generic[T]):
    """The 1-minimal failing subset, in the input's order, with every test made."""

    failing: tuple[T, ...]
    trials: tuple[Trial[T], ...]

    def outcome_of(self, subset: Sequence[T]) -> Outcome | None:
        key = frozenset(subset)
        for trial in self.trials:
            if frozenset(trial.subset) == key:
                return trial.outcome
        return None

    @property
    def grouped(self) -> tuple[T, ...]:
        """Changes kept only because the rest without them did not resolve."""
        return tuple(
            c
            for c in self.failing
            if self.outcome_of([x for x in self.failing if x != c]) is Outcome.UNRESOLVED
        )

    @property
    def interacting(self) -> tuple[T, ...]:
        """Changes whose removal from the failing set made the regression go away."""
        if len(self.failing) == 1:
            return self.failing
        return tuple(
            c
            for c in self.failing
            if self.outcome_of([x for x in self.failing if x != c]) is Outcome.PASS
        )


def _split(items: Sequence[T], n: int) -> list[list[T]]:
    """`items` in `n` contiguous parts of near-equal size (none empty for n <= len)."""
    parts: list[list[T]] = []
    start = 0
    for i in range(n):
        stop = start + (len(items) - start) // (n - i)
        parts.append(list(items[start:stop]))
        start = stop
    return [p for p in parts if p]


def ddmin(changes: Sequence[T], test: Callable[[tuple[T, ...]], Outcome]) -> DdminResult[T]:
    """A 1-minimal subset of `changes` for which `test` is FAIL (see the module docstring).

    :raises ValueError: `changes` is empty or holds duplicates.
    """
    if not changes:
        raise ValueError("ddmin needs at least one change")
    if len(set(changes)) != len(changes):
        raise ValueError("changes must be distinct")
    order = {c: i for i, c in enumerate(changes)}
    cache: dict[frozenset[T], Outcome] = {
        frozenset(changes): Outcome.FAIL,
        frozenset(): Outcome.PASS,
    }
    trials: list[Trial[T]] = []

    def run(subset: list[T]) -> Outcome:
        key = frozenset(subset)
        if key not in cache:
            ordered = tuple(sorted(subset, key=order.__getitem__))
            cache[key] = test(ordered)
            trials.append(Trial(ordered, cache[key]))
        return cache[key]

    current = list(changes)
    n = 2
    while len(current) >= 2:
        parts = _split(current, min(n, len(current)))
        reduced = False
        for part in parts:  # reduce to a subset
            if run(part) is Outcome.FAIL:
                current, n, reduced = part, 2, True
                break
        if not reduced:
            for part in parts:  # reduce to a complement
                complement = [c for c in current if c not in part]
                if len(parts) > 2 and run(complement) is Outcome.FAIL:
                    current, n, reduced = complement, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(current):
                break
            n = min(n * 2, len(current))
    # With 2 parts the complements are the parts themselves; test the single removals
    # of a 2-element result so `grouped` and `interacting` can be read from the trials.
    if len(current) == 2:
        for c in current:
            run([x for x in current if x != c])
    return DdminResult(tuple(sorted(current, key=order.__getitem__)), tuple(trials))
