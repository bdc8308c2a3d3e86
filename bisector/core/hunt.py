"""The hunt: reproduce, bisect every regression step of a range, verify each culprit. Pure.

    hunt(commits, tag_indices, probe, metric, rule, budget, progress, *, prefetch=None)
        -> HuntResult

`commits[0]` is the good endpoint and `commits[-1]` the bad one; `tag_indices` are the
indices of release tags between them (bisected first, `search.CoarseFine`). `probe` is
the `Probe` port (the pipeline's `Measurer`; a simulator's fake); `metric` names the
metric in the trials' output, `rule` and `budget` are what the judge and the sampling
loop read of the config. `progress` receives the typed events (`ProbeStarted`,
`VerdictReached`, `RangeNarrowed`, `PhaseStarted("verify")`, `Warned`); `prefetch`, when
given, is told which commits are likely next (builders start their environments).

Nothing here does I/O, reads a clock or draws a random number: given the same probe
answers the hunt takes the same trials and returns the same result, so a simulator can
call it thousands of times. `EndpointUnmeasurable` (from `core.sampling`) propagates when
an endpoint cannot be measured or lacks the metric.

**Every step of a range.** A candidate that is significantly worse than its range's good
end *and* significantly better than its bad end (`judge.Assessment.between`) shows that
the range holds more than one step. The range is split there and each part bisected
against its own ends (the split commit is bad for the left part, good for the right),
recursively, until each part ends in one candidate or an honest range.

**Found means verified.** Each part's candidate is re-measured against its parent with
fresh, interleaved trials, more while the judge is unclear (at least
`judge.smallest_workable_repeats`, at most `repeats.max` a side). It is a culprit only
when the regression shows in the regressed direction by at least the threshold at
`judge.VERIFY_ALPHA`; otherwise it is the `suspect` and the status is INCONCLUSIVE. The
status is FOUND only when every part ended in a verified culprit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bisector.core import judge, noise
from bisector.core.sampling import Sampler, samples_of
from bisector.core.search import CoarseFine
from bisector.core.stats import median
from bisector.core.types import Commit, MetricRule, Status, TrialBudget, Verdict
from bisector.ports import (
    PhaseStarted,
    ProbeStarted,
    RangeNarrowed,
    TrialStarted,
    VerdictReached,
    Warned,
    no_progress,
)

if TYPE_CHECKING:
    from bisector.core.multisect import SearchFactory
    from bisector.ports import Probe, Progress

# Re-measure a range's ends after every this many probed candidates: drift over a long run
# (a GPU warming up, a neighbour's load) then moves the ends' samples too, and the judge
# does not read it as a regression.
INTERLEAVE_EVERY = 3


@dataclass(frozen=True)
class Found:
    """A candidate a part of the range narrowed to, with its verification's evidence."""

    index: int
    effect: float | None  # relative to the parent's median (fresh trials); None: not re-measured
    effect_abs: float | None  # in the metric's units
    share: float | None  # of the endpoints' total shift
    verified: bool
    confidence: float
    p_value: float | None
    evidence: judge.Comparison | None  # culprit - parent, fresh trials; None: could not re-measure
    trials: int  # fresh trials per side
    note: str


@dataclass(frozen=True)
class HuntStep:
    """One verdict of the hunt, in the order it was decided (`index` into `commits`)."""

    phase: str
    index: int
    verdict: Verdict
    samples: int
    median: float | None
    reason: str = ""


@dataclass(frozen=True)
class HuntResult:
    """What the hunt decided. Indices are into `commits`.

    `culprits` are the verified ones, by index; `suspect` the largest unverified candidate
    (INCONCLUSIVE). `last_good`/`first_bad` bound the part that is not resolved, else the
    suspect, else the largest culprit. `untestable` could not be measured; `unclear` were
    measured but could not be placed.
    """

    status: Status
    reproduction: judge.Comparison
    culprits: tuple[Found, ...]
    suspect: Found | None
    last_good: int
    first_bad: int
    untestable: tuple[int, ...]
    unclear: tuple[int, ...]
    steps: tuple[HuntStep, ...]
    noise: noise.Noise

    @property
    def culprit(self) -> Found | None:
        """The largest culprit (the contract's `culprit`), when the status is FOUND."""
        if self.status is not Status.FOUND or not self.culprits:
            return None
        return max(self.culprits, key=lambda f: f.share or 0.0)


@dataclass(frozen=True)
class _Part:
    """How one part of the range ended: narrowed to `first_bad`, or an open range."""

    last_good: int
    first_bad: int
    narrowed: bool
    interior: tuple[int, ...]  # probed but not placed (SKIP or UNCLEAR)


def hunt(
    commits: Sequence[Commit],
    tag_indices: Sequence[int],
    probe: Probe,
    metric: str,
    rule: MetricRule,
    budget: TrialBudget,
    progress: Progress = no_progress,
    *,
    prefetch: Callable[[Sequence[Commit]], None] | None = None,
    sequential: bool | None = None,
    search: SearchFactory | None = None,
) -> HuntResult:
    """Reproduce, bisect every step, verify (see the module docstring).

    `sequential` picks the candidate rule of `Sampler.decide` (None: its default).
    `search` makes the search of each part (None: `CoarseFine`, one probe at a time;
    `multisect.multisection_factory(K)`: K points a round, for K parallel workers).
    """
    hunter = _Hunter(commits, probe, metric, rule, budget, progress, prefetch, sequential)
    hunter.search = search
    return hunter.run(tag_indices)


class _Hunter:
    def __init__(
        self,
        commits: Sequence[Commit],
        probe: Probe,
        metric: str,
        rule: MetricRule,
        budget: TrialBudget,
        progress: Progress,
        prefetch: Callable[[Sequence[Commit]], None] | None,
        sequential: bool | None = None,
    ) -> None:
        if len(commits) < 2:
            raise ValueError("a hunt needs a good and a bad endpoint")
        self.commits, self.probe, self.metric, self.rule, self.budget = (
            commits,
            probe,
            metric,
            rule,
            budget,
        )
        self.progress, self.prefetch = progress, prefetch
        self.sampler = Sampler(probe, metric, rule, budget, progress, sequential=sequential)
        self.steps: list[HuntStep] = []
        self.skipped: set[int] = set()  # SKIP: could not be measured
        self.probes_done = 0
        self.search: SearchFactory | None = None

    def samples(self, index: int) -> list[list[float]]:
        return self.sampler.samples(self.commits[index])

    def run(self, tag_indices: Sequence[int]) -> HuntResult:
        last = len(self.commits) - 1
        reproduction = self.sampler.settle_endpoints(self.commits[0], self.commits[-1])
        for index, verdict in ((0, Verdict.GOOD), (last, Verdict.BAD)):
            self._step("reproduce", index, verdict)
        measured = noise.measure(self.samples(0), self.samples(last))
        if not reproduction.reproduced:
            return HuntResult(
                Status.NOT_REPRODUCED,
                reproduction,
                (),
                None,
                0,
                last,
                (),
                (),
                tuple(self.steps),
                measured,
            )
        baseline = median(judge.process_medians(self.samples(0)))
        warning = noise.threshold_warning(measured, self.rule, self.budget, baseline)
        if warning:  # once, before the search: the user may stop and fix the config
            self.progress(Warned(warning))
        parts = self._bisect(0, last, tag_indices)
        founds = [self._verify(p.first_bad, reproduction) for p in parts if p.narrowed]
        open_parts = [p for p in parts if not p.narrowed]
        culprits = tuple(f for f in founds if f.verified)
        unverified = [f for f in founds if not f.verified]
        suspect = (
            max(unverified, key=lambda f: f.share if f.share is not None else -1.0)
            if unverified
            else None
        )
        status = (
            Status.FOUND if culprits and not unverified and not open_parts else Status.INCONCLUSIVE
        )
        if open_parts:
            lo, hi = open_parts[0].last_good, open_parts[0].first_bad
        else:
            named = suspect or max(culprits, key=lambda f: f.share or 0.0)
            lo, hi = named.index - 1, named.index
        interior = sorted(i for p in open_parts for i in p.interior)
        measured = noise.measure(self.samples(0), self.samples(last), warning)
        return HuntResult(
            status,
            reproduction,
            culprits,
            suspect,
            lo,
            hi,
            tuple(i for i in interior if i in self.skipped),
            tuple(i for i in interior if i not in self.skipped),
            tuple(self.steps),
            measured,
        )

    # -- the search ---------------------------------------------------------------------

    def _bisect(self, lo: int, hi: int, tag_indices: Sequence[int]) -> list[_Part]:
        """Bisect (lo, hi] against lo (good) and hi (bad); split at a commit in between."""
        make = self.search if self.search is not None else CoarseFine
        search = make(hi - lo + 1, [t - lo for t in tag_indices if lo < t < hi])
        phase = ""
        while (k := search.next_probe()) is not None:
            if search.phase != phase:
                phase = search.phase
                self.progress(
                    RangeNarrowed(search.span, "release tags" if phase == "coarse" else "commits")
                )
            if self.prefetch is not None:
                self.prefetch([self.commits[lo + j] for j in search.candidates_to_prefetch()])
            index = lo + k
            verdict, between = self._probe(index, lo, hi, phase)
            if between:
                inner = [t for t in tag_indices if lo < t < hi]
                return self._bisect(lo, index, inner) + self._bisect(index, hi, inner)
            search.record(k, verdict)
            if self.prefetch is not None:  # known before the interleave: its trials overlap them
                self.prefetch([self.commits[lo + j] for j in search.candidates_to_prefetch()])
            self._interleave(lo, hi)
        if self.prefetch is not None:  # nothing ahead: speculative work can stop
            self.prefetch([])
        result = search.result()
        return [
            _Part(
                lo + result.last_good,
                lo + result.first_bad,
                result.found,
                tuple(lo + i for i in result.untestable),
            )
        ]

    def _probe(self, index: int, lo: int, hi: int, phase: str) -> tuple[Verdict, bool]:
        """The candidate's verdict against lo and hi, and whether it lies between them."""
        commit = self.commits[index]
        self.progress(ProbeStarted(phase, commit.short, commit.subject))
        decision = self.sampler.decide(commit, self.commits[lo], self.commits[hi], phase)
        between = False
        if decision.verdict is Verdict.SKIP:
            self.skipped.add(index)
        elif decision.verdict is Verdict.UNCLEAR and decision.samples:
            between = judge.assess(
                self.samples(index), self.samples(lo), self.samples(hi), self.rule
            ).between
        self._step("split" if between else phase, index, decision.verdict, decision.reason)
        return decision.verdict, between

    def _interleave(self, lo: int, hi: int) -> None:
        """Every few probes, one more trial of each end of the range, alternating order."""
        self.probes_done += 1
        if self.probes_done % INTERLEAVE_EVERY:
            return
        pair = (lo, hi) if (self.probes_done // INTERLEAVE_EVERY) % 2 else (hi, lo)
        for index in pair:
            self._take(self.commits[index], "interleave")

    def _take(self, commit: Commit, phase: str) -> None:
        self.progress(TrialStarted(phase, commit.short, len(self.probe.trials(commit)) + 1))
        self.probe.take(commit)

    def _step(self, phase: str, index: int, verdict: Verdict, reason: str = "") -> None:
        commit = self.commits[index]
        samples = self.samples(index)
        mid = median(judge.process_medians(samples)) if samples else None
        self.steps.append(HuntStep(phase, index, verdict, len(samples), mid, reason))
        self.progress(
            VerdictReached(phase, commit.sha, commit.short, verdict, len(samples), mid, reason)
        )

    # -- verification -------------------------------------------------------------------

    def _verify(self, index: int, reproduction: judge.Comparison) -> Found:
        """Fresh, interleaved trials of the candidate and its parent until the judge settles."""
        parent, culprit = self.commits[index - 1], self.commits[index]
        self.progress(PhaseStarted("verify"))
        base = {c.sha: len(self.probe.trials(c)) for c in (parent, culprit)}
        floor = max(self.budget.min, judge.smallest_workable_repeats(judge.VERIFY_ALPHA))
        cap = max(self.budget.max, floor)
        comp: judge.Comparison | None = None
        n = 0
        while True:
            if self.probe.untestable(parent) or self.probe.untestable(culprit):
                break
            fresh = [self.probe.trials(c)[base[c.sha] :] for c in (parent, culprit)]
            n = min(len(t) for t in fresh)
            ps, cs = (samples_of(t, self.metric) for t in fresh)
            if len(ps) >= 2 and len(cs) >= 2:
                comp = judge.compare(ps, cs, self.rule, alpha=judge.VERIFY_ALPHA)
                baseline = median(judge.process_medians(ps))
                if n >= floor and (
                    comp.reproduced or judge.rules_out_regression(comp, self.rule, baseline)
                ):
                    break
            if n >= cap:
                break
            # Alternate which side goes first, so a trend over the pairs hits both alike.
            for c in (parent, culprit) if n % 2 == 0 else (culprit, parent):
                self._take(c, "verify")
        return _found(index, comp, n, reproduction)


def _found(
    index: int, comp: judge.Comparison | None, n: int, reproduction: judge.Comparison
) -> Found:
    if comp is None:
        return Found(
            index,
            None,
            None,
            None,
            False,
            0.0,
            None,
            None,
            n,
            "the culprit or its parent could not be re-measured (unverified)",
        )
    verified = comp.reproduced
    if verified:
        note = "the regression reappears between parent and culprit in fresh trials"
    elif comp.significant and comp.improved or comp.effect * reproduction.effect < 0:
        note = "fresh trials show the change in the other direction: not a culprit (unverified)"
    else:
        note = "fresh trials of parent and culprit did not show the regression (unverified)"
    share = round(comp.effect / reproduction.effect, 3) if reproduction.effect else None
    return Found(
        index,
        comp.relative_effect,
        comp.effect,
        share,
        verified,
        round(1.0 - comp.p_value, 4),
        comp.p_value,
        comp,
        n,
        note,
    )
