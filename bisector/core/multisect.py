"""Multisection: K probes a round split the open range into K+1 parts, pure.

With K workers a round measures K candidates at once. `split_points` picks them among
the untested candidates between the last good and the first bad (by count, like
`search.Bisection`: with K = 1 it is exactly the bisection's lower median), so whatever
the verdicts, at most a (K+1)-th of the untested range is left: ceil(log_{K+1} n) rounds
plus one per step around an untestable candidate.

`Multisection` has the stepwise shape of `search.Bisection` (`next_probe`, `record`,
`candidates_to_prefetch`, `result`, `phase`, `span`), so the pure hunt drives it
unchanged (`hunt(..., search=multisection_factory(K))`). A round's points are fixed when
the round starts; `next_probe` hands them out one at a time and `candidates_to_prefetch`
names all the round's pending points (the current one first): the executor measures them
in parallel while the judge decides the current one. A verdict can make later points of the round moot (a
BAD point makes every point above it irrelevant); `moot` says which, so their
in-flight trials can be cancelled. When one point of a round is left, the prefetch list
also holds the next round's points after either verdict (built and measured ahead).

`MultiCoarseFine` multisects release tags first, then the commits between the two
adjacent tags, as `search.CoarseFine` does for bisection.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from bisector.core.search import BisectResult, CoarseFine, OpenRange
from bisector.core.types import Verdict


class Search(Protocol):
    """What the hunt reads of a search (`search.CoarseFine` and `MultiCoarseFine` both are)."""

    @property
    def phase(self) -> str: ...

    @property
    def span(self) -> int: ...

    def next_probe(self) -> int | None: ...

    def record(self, index: int, verdict: Verdict) -> None: ...

    def candidates_to_prefetch(self) -> tuple[int, ...]: ...

    def result(self) -> BisectResult: ...


#: How the hunt makes a search over commits 0..n-1 with release tags at the given indices.
SearchFactory = Callable[[int, Sequence[int]], Search]


def split_points(untested: Sequence[int], k: int) -> tuple[int, ...]:
    """K of the sorted `untested` indices that split them into K+1 parts of near-equal count."""
    m = len(untested)
    if m == 0 or k < 1:
        return ()
    k = min(k, m)
    ranks = sorted({max(1, (j * (m + 1)) // (k + 1)) for j in range(1, k + 1)})
    return tuple(untested[r - 1] for r in ranks)


class Multisection(OpenRange):
    """A multisection over indices 0..n-1 (0 good, n-1 bad), K points a round."""

    def __init__(self, n: int, k: int) -> None:
        super().__init__(n, "multisection")
        if k < 1:
            raise ValueError("a multisection needs at least one point a round (k >= 1)")
        self.k = k
        self._round: tuple[int, ...] = ()
        self.rounds = 0

    def _untested(self) -> list[int]:
        skip = set(self._untestable)
        return [i for i in range(self._last_good + 1, self._first_bad) if i not in skip]

    def _pending(self) -> list[int]:
        done = {s.index for s in self._steps}
        return [i for i in self._round if self._last_good < i < self._first_bad and i not in done]

    def next_probe(self) -> int | None:
        """The pending point of this round to judge next (a new round when none is left)."""
        pending = self._pending()
        if not pending:
            self._round = split_points(self._untested(), self.k)
            if not self._round:
                return None
            self.rounds += 1
            pending = list(self._round)
        return pending[0]

    def moot(self, indices: Iterable[int]) -> tuple[int, ...]:
        """Those of `indices` outside the open range: no verdict on them can matter now."""
        return tuple(i for i in indices if not self._last_good < i < self._first_bad)

    def candidates_to_prefetch(self) -> tuple[int, ...]:
        """The round's pending points, the current one first; with only it left, also the
        next round's points after either verdict (measured ahead by a parallel executor)."""
        current = self.next_probe()
        if current is None:
            return ()
        others = [i for i in self._pending() if i != current]
        if others:
            return (current, *others)
        branches = []
        for verdict in (Verdict.GOOD, Verdict.BAD):
            trial = self._copy()
            trial.record(current, verdict)
            trial.next_probe()
            branches.append(trial._pending())
        # Alternate the two branches: neither is likelier, so each gets half the idle workers.
        ahead: list[int] = [current]
        for pair in itertools.zip_longest(*branches):
            ahead.extend(i for i in pair if i is not None and i not in ahead)
        return tuple(ahead)

    def _copy(self) -> Multisection:
        twin = Multisection(self.n, self.k)
        twin._last_good, twin._first_bad = self._last_good, self._first_bad
        twin._untestable, twin._steps = list(self._untestable), list(self._steps)
        twin._round, twin.rounds = self._round, self.rounds
        return twin

    @property
    def phase(self) -> str:
        return "fine"

    @property
    def span(self) -> int:
        return self.n


class MultiCoarseFine(CoarseFine):
    """`Multisection` over release tags first, then over the commits between adjacent tags:
    `search.CoarseFine` with K points a round in each pass.

    Indices are commit indices 0..n_commits-1 throughout, like `search.CoarseFine`.
    """

    def __init__(self, n_commits: int, tag_indices: Iterable[int], k: int) -> None:
        self.k = k
        super().__init__(n_commits, tag_indices, lambda n: Multisection(n, k))

    def _passes(self) -> list[Multisection]:
        made = [self._coarse] if self._fine is None else [self._coarse, self._fine]
        return [p for p in made if isinstance(p, Multisection)]

    @property
    def rounds(self) -> int:
        return sum(p.rounds for p in self._passes())

    def candidates_to_prefetch(self) -> tuple[int, ...]:
        """The current pass's next round's points (`Multisection.candidates_to_prefetch`)."""
        search = self._passes()[-1]
        return tuple(self._to_commit(i) for i in search.candidates_to_prefetch())


def multisection_factory(k: int) -> SearchFactory:
    """The hunt's search with K points a round (`hunt(..., search=...)`)."""

    def make(n_commits: int, tag_indices: Sequence[int]) -> Search:
        return MultiCoarseFine(n_commits, tag_indices, k)

    return make


def rounds_bound(n: int, k: int) -> int:
    """ceil(log_{K+1} n): the rounds a multisection of n candidates needs without skips."""
    return max(1, math.ceil(math.log(n) / math.log(k + 1) - 1e-9))


def rounds_to_culprit(n: int, k: int, culprit: int) -> tuple[int, BisectResult]:
    """Rounds a multisection over 0..n-1 takes when `culprit` is the first bad (a fake probe)."""
    search = Multisection(n, k)
    while (index := search.next_probe()) is not None:
        search.record(index, Verdict.BAD if index >= culprit else Verdict.GOOD)
    return search.rounds, search.result()
