"""The bisection: find the first bad candidate in an ordered list, pure.

Candidates are indices 0..n-1, oldest first; 0 is the known good endpoint and n-1 the
known bad one (both already measured by reproduction, never probed here). An
`IndexProbe` turns an index into a `Verdict` (the pipeline's probe measures the commit at
that index through the sampling loop, `core.sampling`).

SKIP and UNCLEAR are stepped around as `git bisect skip` does: the search never guesses
their side, it probes the untested candidate nearest the middle instead. Among the
untested candidates between the current last good and first bad it probes their median
(by count, not by position), so every GOOD or BAD answer halves what is left to test and
every SKIP removes one: at most ceil(log2 n) + skips + 1 probes. When untestable
candidates sit next to the boundary the result is an honest range, not a pick.

`Bisection` is the stepwise form: the caller asks `next_probe`, measures, and `record`s
the verdict, so it can prefetch and journal in between; `bisect` drives it with a probe.
`CoarseFine` and `coarse_fine` bisect over release tags first, then over the commits
between the two adjacent tags.

Nothing here is persisted. A resumed run does not replay journaled verdicts: it starts a
fresh search, and the probes find their trials in the journal, so each verdict is
recomputed from the same measurements and no trial is repeated. `Bisection.resume`
(recording a list of steps into a fresh search) serves the look-ahead of
`candidates_to_prefetch`, which asks what the next probe would be after either verdict.
"""

from __future__ import annotations

import abc
import bisect as _bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bisector.core.types import Verdict

_DECISIVE = (Verdict.GOOD, Verdict.BAD)


class IndexProbe(Protocol):
    """Measures the candidate at `index` and says what it is (any callable int -> Verdict)."""

    def __call__(self, index: int, /) -> Verdict: ...


@dataclass(frozen=True)
class Step:
    """One probe of the search, in the order it was made."""

    index: int
    verdict: Verdict


@dataclass(frozen=True)
class BisectResult:
    """Where the regression lies: after `last_good`, at or before `first_bad`.

    `untestable` are the indices strictly between them that were probed and came back
    SKIP or UNCLEAR; when the search is done they are all of the interior, so the first
    bad is `first_bad` or one of them.
    """

    last_good: int
    first_bad: int
    untestable: tuple[int, ...]
    steps: tuple[Step, ...]

    @property
    def found(self) -> bool:
        """Narrowed to one candidate: `first_bad` is the culprit."""
        return self.first_bad == self.last_good + 1


class OpenRange(abc.ABC):
    """The open range of a search over indices 0..n-1 (0 good, n-1 bad): what a verdict
    does to it is the same whether one point (`Bisection`) or K points a round
    (`multisect.Multisection`) are probed; only the choice of the next points differs."""

    def __init__(self, n: int, what: str) -> None:
        if n < 2:
            raise ValueError(f"a {what} needs a good and a bad endpoint (n >= 2)")
        self.n = n
        self._last_good = 0
        self._first_bad = n - 1
        self._untestable: list[int] = []  # sorted, so counting a range is a bisection
        self._steps: list[Step] = []

    @property
    def last_good(self) -> int:
        return self._last_good

    @property
    def first_bad(self) -> int:
        return self._first_bad

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    @abc.abstractmethod
    def next_probe(self) -> int | None:
        """The next index to judge; None when the range is closed (each search's own choice)."""

    @property
    def done(self) -> bool:
        """Nothing between last good and first bad is left to test."""
        return self.next_probe() is None

    def record(self, index: int, verdict: Verdict) -> None:
        """Take the verdict for `index`, an untested index between last good and first bad.

        :raises ValueError: the index is outside that range or already recorded.
        """
        known = _bisect.bisect_left(self._untestable, index)
        recorded = known < len(self._untestable) and self._untestable[known] == index
        if not self._last_good < index < self._first_bad or recorded:
            raise ValueError(
                f"index {index} is not an untested candidate between "
                f"{self._last_good} and {self._first_bad}"
            )
        if verdict is Verdict.GOOD:
            self._last_good = index
        elif verdict is Verdict.BAD:
            self._first_bad = index
        else:
            self._untestable.insert(known, index)
        self._steps.append(Step(index, verdict))

    def result(self) -> BisectResult:
        """The range as it stands (final once `done`; before that the interior may hold
        untested indices as well as the untestable ones)."""
        lo, hi = self._last_good, self._first_bad
        return BisectResult(
            last_good=lo,
            first_bad=hi,
            untestable=tuple(i for i in self._untestable if lo < i < hi),
            steps=self.steps,
        )


class Bisection(OpenRange):
    """A bisection over indices 0..n-1, advanced one recorded verdict at a time."""

    def __init__(self, n: int) -> None:
        super().__init__(n, "bisection")

    @classmethod
    def resume(cls, n: int, steps: Iterable[Step]) -> Bisection:
        """A fresh bisection with `steps` recorded again, in order."""
        bisection = cls(n)
        for step in steps:
            bisection.record(step.index, step.verdict)
        return bisection

    def _untested_upto(self, index: int) -> int:
        """How many untested indices lie in (last_good, index]."""
        lo = self._last_good
        skipped = _bisect.bisect_right(self._untestable, index) - _bisect.bisect_right(
            self._untestable, lo
        )
        return index - lo - skipped

    def next_probe(self) -> int | None:
        """The index to measure next, or None when the search is over."""
        total = self._untested_upto(self._first_bad - 1)
        if total <= 0:
            return None
        rank = (total - 1) // 2 + 1  # the lower median, counted from 1
        # the smallest index with `rank` untested indices up to it is itself untested
        low, high = self._last_good + 1, self._first_bad - 1
        while low < high:
            mid = (low + high) // 2
            if self._untested_upto(mid) >= rank:
                high = mid
            else:
                low = mid + 1
        return low

    def candidates_to_prefetch(self) -> tuple[int, ...]:
        """The next probes after a GOOD and after a BAD verdict on `next_probe()`.

        Build their environments in the background while the current one is measured.
        """
        return _next_probes(self, lambda: Bisection.resume(self.n, self._steps))


class _Stepwise(Protocol):
    def next_probe(self) -> int | None: ...

    def record(self, index: int, verdict: Verdict) -> None: ...


def _next_probes(search: _Stepwise, replay: Callable[[], _Stepwise]) -> tuple[int, ...]:
    """The probe after a GOOD and after a BAD verdict on `search.next_probe()`, each
    found on a fresh `replay()` of the search so far (the search itself is untouched)."""
    current = search.next_probe()
    if current is None:
        return ()
    following: list[int] = []
    for verdict in _DECISIVE:
        trial = replay()
        trial.record(current, verdict)
        nxt = trial.next_probe()
        if nxt is not None and nxt not in following:
            following.append(nxt)
    return tuple(following)


def bisect(n: int, probe: IndexProbe) -> BisectResult:
    """Find the first bad index in 0..n-1 (0 good, n-1 bad) with `probe`."""
    bisection = Bisection(n)
    while (index := bisection.next_probe()) is not None:
        bisection.record(index, probe(index))
    return bisection.result()


class CoarseFine:
    """Bisect over release tags first, then over the commits between the adjacent tags.

    Indices are commit indices 0..n_commits-1 throughout (`next_probe`, `record`,
    `result`). Tag indices outside the open interval (0, n_commits-1) are ignored. A
    tag found untestable in the coarse pass is not probed again in the fine pass.
    """

    def __init__(
        self,
        n_commits: int,
        tag_indices: Iterable[int],
        search: Callable[[int], OpenRange] = Bisection,
    ) -> None:
        """`search`: the search of each pass over n candidates (one point a probe by
        default; `multisect.MultiCoarseFine` passes K points a round)."""
        if n_commits < 2:
            raise ValueError("a bisection needs a good and a bad endpoint (n >= 2)")
        self.n_commits = n_commits
        tags = sorted({t for t in tag_indices if 0 < t < n_commits - 1})
        self._points: Sequence[int] = [0, *tags, n_commits - 1]
        self._search = search
        self._coarse = search(len(self._points))
        self._fine: OpenRange | None = None
        self._offset = 0
        self._steps: list[Step] = []
        self._advance()

    def _advance(self) -> None:
        """Start the fine pass once the coarse one is over."""
        if self._fine is not None or not self._coarse.done:
            return
        coarse = self._coarse.result()
        self._offset = self._points[coarse.last_good]
        self._fine = self._search(self._points[coarse.first_bad] - self._offset + 1)
        for position in coarse.untestable:  # already known: do not measure again
            self._fine.record(self._points[position] - self._offset, Verdict.SKIP)

    def _to_commit(self, i: int) -> int:
        """Index `i` of the current pass as a commit index."""
        return self._points[i] if self._fine is None else i + self._offset

    @property
    def steps(self) -> tuple[Step, ...]:
        """The probes actually made, in commit indices."""
        return tuple(self._steps)

    @property
    def phase(self) -> str:
        """`coarse` while bisecting release tags, then `fine`."""
        return "coarse" if self._fine is None else "fine"

    @property
    def span(self) -> int:
        """How many candidates (endpoints included) the current pass bisects."""
        return len(self._points) if self._fine is None else self._fine.n

    def next_probe(self) -> int | None:
        index = (self._coarse if self._fine is None else self._fine).next_probe()
        return None if index is None else self._to_commit(index)

    @property
    def done(self) -> bool:
        return self.next_probe() is None

    def record(self, index: int, verdict: Verdict) -> None:
        """Take the verdict for commit `index` (see `Bisection.record`)."""
        if self._fine is None:
            if index not in self._points:
                raise ValueError(f"index {index} is not a tag of the coarse pass")
            self._coarse.record(self._points.index(index), verdict)
        else:
            self._fine.record(index - self._offset, verdict)
        self._steps.append(Step(index, verdict))
        self._advance()

    def candidates_to_prefetch(self) -> tuple[int, ...]:
        """The next probes after a GOOD and after a BAD verdict on `next_probe()`."""

        def replay() -> CoarseFine:
            trial = CoarseFine(self.n_commits, self._points[1:-1], self._search)
            for step in self._steps:
                trial.record(step.index, step.verdict)
            return trial

        return _next_probes(self, replay)

    def result(self) -> BisectResult:
        """The range in commit indices, with every probe made (coarse and fine)."""
        if self._fine is None:
            coarse = self._coarse.result()
            lo, hi = self._points[coarse.last_good], self._points[coarse.first_bad]
            untestable = tuple(self._points[p] for p in coarse.untestable)
        else:
            fine = self._fine.result()
            lo, hi = fine.last_good + self._offset, fine.first_bad + self._offset
            untestable = tuple(i + self._offset for i in fine.untestable)
        return BisectResult(lo, hi, untestable, self.steps)


def coarse_fine(n_commits: int, tag_indices: Iterable[int], probe: IndexProbe) -> BisectResult:
    """`bisect` over the tags among commits 0..n_commits-1, then between adjacent tags."""
    search = CoarseFine(n_commits, tag_indices)
    while (index := search.next_probe()) is not None:
        search.record(index, probe(index))
    return search.result()
