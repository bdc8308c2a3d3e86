"""The posterior search of one part of a range: what to measure next, and what it showed.

`core.posterior` is the arithmetic (a posterior over the first bad commit from each
process's log-likelihood ratio); this is the state of one part's search over the probe's
trials, which `core.hunt` drives one process at a time:

    search_part(hunter, lo, hi, tag_indices) -> list[Part]

drives it: `PartSearch.next` names the commit, one trial of it is taken,
`PartSearch.measured` says whether to go on or split the part there, and
`PartSearch.result` is where the posterior leaves the part (one position holding half
of it: `posterior.HANDOVER_EPSILON`). The verification then reads the posterior from
every trial after each fresh pair (`standing`), and a verification given up sends the
part back here (`search_on`).

Offsets are into the part: 0 is its good end, n - 1 its bad end.

**Release tags first.** With release tags inside the part (`tags`), the search first
probes only them (**coarse**), each by the same posterior, until the posterior holds
`1 - epsilon` between two adjacent tags; then every commit (**fine**), the posterior
going on from where the tags left it. Every commit is judged against the part's ends,
as in the candidate-by-candidate search.

**A commit halfway between the ends.** The posterior assumes one step, so a commit at a
second step's level moves it hardly at all, and Horstein's rule would keep probing around
it. A commit whose processes (two or more) lie in the middle third between the ends'
medians is therefore *pinned*: measured on until it leaves that third, shows that it lies
significantly between the ends (`judge.Assessment.between`: the part is split there, as
the candidate-by-candidate search does), or its budget (`repeats.max` trials) is spent;
then it cannot be placed and merges its two positions (an unclear commit). Commits that
could not be measured (untestable, or `repeats.min` trials without the metric) are merged
the same way, as SKIP.

**A commit worse than the bad end.** One whose every process (two or more) lies beyond
the bad end is pinned too; once significantly worse than it (`between.worse_than_bad`,
still so after the bad end is measured twice more) the part ends there: the regression
lies before it and what follows takes part of it back (10 -> 20 -> 15).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bisector.core import between, judge, posterior, sequential
from bisector.core.outcome import Part
from bisector.core.sampling import Sampler
from bisector.core.types import Commit, MetricRule, TrialBudget, Verdict
from bisector.ports import ProbeStarted, Progress, RangeNarrowed

#: The ends' spread is widened by 1 + this / their processes (`sequential.pooled_spread`),
#: as the lean rule's.
WIDENING = sequential.LEAN.widening
#: One end of the part is re-measured every this many processes (alternating which), so
#: drift moves the ends too; a candidate costs one process here, not one or two.
INTERLEAVE_EVERY = 8
#: A commit is pinned (measured on) once this many of its processes lie, by their median,
#: in the middle third between the ends.
PIN_FROM = 2
#: A commit whose every process lies beyond the bad end (`sequential.beyond_bad`) is
#: pinned too, and once significantly worse than the bad end the part ends there
#: (`Placed.BEYOND`). False: such a commit is read for nothing, as one hogged process is.
BEYOND_SPLIT = True
#: Before the part ends there, the bad end is measured this many times more and the commit
#: must still be worse than it: a CPU hog beside the benchmark slows a run of processes,
#: the bad end's as well as the commit's.
BEYOND_CONFIRM = 2


@dataclass(frozen=True)
class Step:
    """Where the search placed a commit it measured (`PartSearch.result`)."""

    offset: int
    phase: str  # coarse (a release tag) or fine
    verdict: Verdict
    reason: str = ""


class Placed(enum.Enum):
    """What one more process of a commit did to the search."""

    MOVED = "moved"  # the posterior moved; go on
    SKIP = "skip"  # the commit cannot be measured
    SPLIT = "split"  # the commit lies between the ends: split the part there
    BEYOND = "beyond"  # the commit is worse than the bad end: the part ends there


@dataclass
class PartSearch:
    """The posterior search of one part (see the module docstring)."""

    commits: Sequence[Commit]  # the part, its good end first and its bad end last
    sampler: Sampler
    rule: MetricRule
    budget: TrialBudget
    epsilon: float = posterior.EPSILON
    order: list[int] = field(default_factory=list)  # measured, in the order first measured
    blocked: set[int] = field(default_factory=set)  # cannot be placed: merges its positions
    spent: set[int] = field(default_factory=set)  # at `repeats.max` trials: not measured again
    skipped: set[int] = field(default_factory=set)  # could not be measured (SKIP)
    reasons: dict[int, str] = field(default_factory=dict)  # why SKIP, when we know
    pinned: int | None = None
    tags: tuple[int, ...] = ()  # release tags inside the part: probed first (coarse)
    between_tags: tuple[int, int] | None = None  # where the coarse pass ended

    @property
    def n(self) -> int:
        return len(self.commits)

    @property
    def phase(self) -> str:
        """`coarse` while probing release tags only, then `fine`."""
        if self.between_tags is not None or not self.tags:
            return "fine"
        points = [0, *self.tags, self.n - 1]
        ratios = self.llrs()
        for a, b in zip(points, points[1:], strict=False):
            if posterior.interval_mass(self.n, ratios, a, b) >= 1 - self.epsilon:
                self.between_tags = (a, b)
                return "fine"
        if all(t in self.blocked or t in self.spent for t in self.tags):
            self.between_tags = (0, self.n - 1)
            return "fine"
        return "coarse"

    @property
    def span(self) -> int:
        """How many commits (ends included) the current pass searches."""
        if self.phase == "coarse":
            return len(self.tags) + 2
        a, b = self.between_tags or (0, self.n - 1)
        return b - a + 1

    def _excluded(self) -> set[int]:
        """Not to be probed now: spent commits, and in a coarse pass all but the tags."""
        if self.phase == "fine":
            return set(self.spent)
        tags = set(self.tags)
        return self.spent | {j for j in range(1, self.n - 1) if j not in tags}

    @property
    def cap(self) -> int:
        """Processes after which the search stops whatever the posterior says: a safety net
        for a pathological probe (`repeats.max` for each halving of the part, and one more)."""
        return self.budget.max * (max(1, self.n - 2).bit_length() + 1)

    def _medians(self, offset: int) -> list[float]:
        return judge.process_medians(self.sampler.samples(self.commits[offset]))

    def llrs(self) -> dict[int, float]:
        """Each measured commit's summed log-likelihood ratio against the part's ends."""
        good, bad = self._medians(0), self._medians(self.n - 1)
        spread = sequential.pooled_spread(good, bad, WIDENING)
        return {
            j: sum(
                sequential.process_llrs(self._medians(j), good, bad, spread, posterior.PROCESS_CAP)
            )
            for j in self.order
        }

    def middle(self, j: int) -> bool:
        """Commit j's processes (two or more) lie in the middle third between the ends."""
        cand = self._medians(j)
        if len(cand) < PIN_FROM:
            return False
        return sequential.in_middle(cand, self._medians(0), self._medians(self.n - 1))

    def next(self) -> int | None:
        """The offset to measure next: the pinned commit, else the posterior's median
        (`posterior.next_probe`); None when the posterior is settled."""
        if self.pinned is not None:
            return self.pinned
        return posterior.next_probe(
            self.n, self.llrs(), self.blocked, self.epsilon, self._excluded()
        )

    def ahead(self, j: int) -> list[int]:
        """The offsets measured after j if its next process looks clearly bad, or good
        (their environments can be built meanwhile)."""
        ratios, out, excluded = self.llrs(), [], self._excluded()
        for sign in (1.0, -1.0):
            what_if = dict(ratios)
            what_if[j] = what_if.get(j, 0.0) + sign * posterior.PROCESS_CAP
            k = posterior.next_probe(self.n, what_if, self.blocked, self.epsilon, excluded)
            if k is not None and k not in out:
                out.append(k)
        return out

    def resume(self) -> None:
        """Count every trial the part's commits already have (a resumed run's journal,
        an earlier run of the same benchmark, the search a failed verification sends back
        here): the posterior starts where they leave it. Nothing is pinned or split on
        them; the next process of a commit decides that."""
        probe = self.sampler.probe
        for j in range(1, self.n - 1):
            commit = self.commits[j]
            if not (probe.trials(commit) or probe.untestable(commit)):
                continue
            self.order.append(j)
            if not self._unmeasurable(j) and len(probe.trials(commit)) >= self.budget.max:
                self.spent.add(j)
                if self.middle(j):
                    self.blocked.add(j)

    def _unmeasurable(self, j: int) -> bool:
        """Commit j is untestable or lacks the metric: SKIP, its two positions merged."""
        commit, probe = self.commits[j], self.sampler.probe
        trials = probe.trials(commit)
        if not (probe.untestable(commit) or self.sampler.missing(trials)):
            return False
        self.blocked.add(j)
        self.skipped.add(j)
        if not probe.untestable(commit):
            self.reasons[j] = self.sampler.missing_reason(trials)
        return True

    def measured(self, j: int) -> Placed:
        """Take note of commit j's trials after one more was taken (see the module docstring)."""
        if j not in self.order:
            self.order.append(j)
        if self._unmeasurable(j):
            self.pinned = None
            return Placed.SKIP
        if len(self.sampler.probe.trials(self.commits[j])) >= self.budget.max:
            self.spent.add(j)
        middle = self.middle(j)
        if middle and len(self._medians(j)) >= 3 and self._between(j):
            self.pinned = None
            return Placed.SPLIT
        if BEYOND_SPLIT and self.beyond(j):
            if self.worse_than_bad(j):
                self.pinned = None
                return Placed.BEYOND
            self.pinned = j if j not in self.spent else None
            return Placed.MOVED
        if middle and j in self.spent:
            self.blocked.add(j)
        self.pinned = j if middle and j not in self.spent else None
        return Placed.MOVED

    def beyond(self, j: int) -> bool:
        """Commit j's processes (two or more) all lie beyond the part's bad end."""
        return sequential.beyond_bad(self._medians(j), self._medians(0), self._medians(self.n - 1))

    def _between(self, j: int) -> bool:
        return judge.assess(*self._samples(j), self.rule).between

    def worse_than_bad(self, j: int) -> bool:
        return between.worse_than_bad(*self._samples(j), self.rule)

    def _samples(self, j: int) -> tuple[judge.Samples, judge.Samples, judge.Samples]:
        """Commit j's trials' samples, then the part's good and bad ends'."""
        samples = self.sampler.samples
        return samples(self.commits[j]), samples(self.commits[0]), samples(self.commits[-1])

    def result(self) -> tuple[Part, list[Step]]:
        """The part as the posterior leaves it (`lo` = 0: the caller offsets it) and one
        step per measured commit, in the order first measured: GOOD before the block the
        posterior settled on, BAD from its last position on, SKIP or UNCLEAR when it could
        not be placed. Narrowed only when settled on one position."""
        ratios = self.llrs()
        block = posterior.settled(self.n, ratios, self.blocked, self.epsilon)
        narrowed = block is not None and block.first == block.last
        if block is None:
            block = posterior.best_block(self.n, ratios, self.blocked)
        steps = []
        for j in self.order:
            if j in self.skipped:
                verdict = Verdict.SKIP
            elif j in self.blocked or block.first <= j < block.last:
                verdict = Verdict.UNCLEAR
            else:
                verdict = Verdict.GOOD if j < block.first else Verdict.BAD
            phase = "coarse" if j in self.tags else "fine"
            steps.append(Step(j, phase, verdict, self.reasons.get(j, "")))
        interior = tuple(j for j in sorted(self.blocked) if block.first <= j < block.last)
        return Part(block.first - 1, block.last, narrowed, interior, (0, self.n - 1)), steps


class Hunter(Protocol):
    """What the posterior search needs of the hunt (`core.hunt`)."""

    commits: Sequence[Commit]
    sampler: Sampler
    rule: MetricRule
    budget: TrialBudget
    progress: Progress
    prefetch: Callable[[Sequence[Commit]], None] | None
    skipped: set[int]

    def take(self, commit: Commit, phase: str) -> None: ...

    def compare(self, candidate: int, *refs: int) -> None: ...

    def step(self, phase: str, index: int, verdict: Verdict, reason: str = "") -> None: ...

    def bisect(self, lo: int, hi: int, tag_indices: Sequence[int]) -> list[Part]: ...


def search_part(hunter: Hunter, lo: int, hi: int, tag_indices: Sequence[int]) -> list[Part]:
    """Search (lo, hi] of `hunter.commits` one process at a time by its posterior, release
    tags first; at a commit significantly between the ends, `hunter.bisect` each side."""
    escalated = hunter.sampler.escalated
    epsilon = posterior.ESCALATED_EPSILON if escalated else posterior.HANDOVER_EPSILON
    part = hunter.commits[lo : hi + 1]
    inner = [t for t in tag_indices if lo < t < hi]
    search = PartSearch(part, hunter.sampler, hunter.rule, hunter.budget, epsilon)
    search.tags = tuple(t - lo for t in sorted(set(inner)))
    search.resume()
    phase, processes, estimate = "", 0, posterior.StepsLeft()
    while processes < search.cap and (j := search.next()) is not None:
        if search.phase != phase:
            phase = search.phase
            what = "release tags" if phase == "coarse" else "commits"
            hunter.progress(RangeNarrowed(search.span, what))
        commit = part[j]
        if hunter.prefetch is not None:
            hunter.prefetch([part[k] for k in search.ahead(j)])
        hunter.compare(lo + j, lo, hi)
        bits = posterior.bits_left(search.n, search.llrs(), search.blocked, search.epsilon)
        left = estimate(bits, processes, search.cap - processes)
        hunter.progress(ProbeStarted(phase, commit.short, commit.subject, left))
        had = len(hunter.sampler.samples(commit))
        if not hunter.sampler.top_up_ends(had, part[0], part[-1]):
            hunter.take(commit, phase)
        processes += 1
        placed = search.measured(j)
        if placed is Placed.SPLIT:
            _record(hunter, lo, search, but=j)
            hunter.step("split", lo + j, Verdict.UNCLEAR)
            return hunter.bisect(lo, lo + j, inner) + hunter.bisect(lo + j, hi, inner)
        if placed is Placed.BEYOND and _confirmed(hunter, search, j):
            # What follows it takes some back: no regression there.
            _record(hunter, lo, search, but=j)
            hunter.step("beyond", lo + j, Verdict.BAD)
            return hunter.bisect(lo, lo + j, inner)
        if processes % INTERLEAVE_EVERY == 0:
            turn = processes // INTERLEAVE_EVERY
            hunter.take(part[0] if turn % 2 else part[-1], "interleave")
    if hunter.prefetch is not None:  # nothing ahead: speculative work can stop
        hunter.prefetch([])
    found = _record(hunter, lo, search)
    interior = tuple(lo + i for i in found.interior)
    return [Part(lo + found.last_good, lo + found.first_bad, found.narrowed, interior, (lo, hi))]


def _confirmed(hunter: Hunter, search: PartSearch, j: int) -> bool:
    """Commit j is still worse than the part's bad end after `BEYOND_CONFIRM` more
    processes of that end; otherwise it is measured on (pinned) while its budget lasts."""
    for _ in range(BEYOND_CONFIRM):
        hunter.take(search.commits[-1], "interleave")
    if search.worse_than_bad(j):
        return True
    search.pinned = j if j not in search.spent else None
    return False


def _record(hunter: Hunter, lo: int, search: PartSearch, but: int | None = None) -> Part:
    """Record where the posterior placed each commit it measured (all but `but`) as the
    hunt's steps, and return the part as it stands (offsets into it)."""
    part, steps = search.result()
    hunter.skipped.update(lo + j for j in search.skipped)
    for step in steps:
        if step.offset != but:
            hunter.step(step.phase, lo + step.offset, step.verdict, step.reason)
    return part


def standing(hunter: Hunter, ends: tuple[int, int], first_bad: int) -> Callable[[], float]:
    """For `core.verify`: the posterior mass of `first_bad` (of the block holding it) as
    the first bad commit of the part `ends`, from every trial its commits have when it is
    called (after each fresh pair: the verification's own trials count)."""
    lo, hi = ends

    def mass() -> float:
        part = hunter.commits[lo : hi + 1]
        search = PartSearch(part, hunter.sampler, hunter.rule, hunter.budget)
        search.resume()
        k = first_bad - lo
        blocks = posterior.blocks(search.n, search.llrs(), search.blocked)
        return next((b.mass for b in blocks if b.first <= k <= b.last), 0.0)

    return mass


def search_on(hunter: Hunter, ends: tuple[int, int], split_at: int | None) -> list[Part]:
    """After a verification was given up (`verify.Found.abandoned`): search the part again,
    every trial counting, or each side of the commit between its ends (`split_at`)."""
    lo, hi = ends
    if split_at is None:
        return hunter.bisect(lo, hi, [])
    return [*hunter.bisect(lo, split_at, []), *hunter.bisect(split_at, hi, [])]
