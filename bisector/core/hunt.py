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

**Not reproduced** (exit 3) only when the endpoints rule out a regression of the threshold
(`core.nullcheck`, measuring them on to `repeats.max`); otherwise INCONCLUSIVE over the
whole range with the reason (`HuntResult.reason`).

**Every step of a range.** A candidate that is significantly worse than its range's good
end *and* significantly better than its bad end (`judge.Assessment.between`) shows that
the range holds more than one step. The range is split there and each part bisected
against its own ends (the split commit is bad for the left part, good for the right),
recursively, until each part ends in one candidate or an honest range. A candidate
significantly worse than its bad end (`between.worse_than_bad`: a later commit takes part
of the regression back) is placed bad, so the step is searched before it.

**The candidate rule** is `HUNT_RULE` ("lean") unless the caller names another; the
endpoints start at 3 a side on a promising difference, settled (4 a side at least) after
the search. Under it each part is searched by its posterior (`core.partsearch`) until one
position holds half of it; the verification's fresh trials then move the posterior too.
A verification the posterior leaves (`Found.abandoned`) sends the part back to the search
(`SEARCH_ROUNDS`); one that fails escalates the rule and searches the part again, once.

**Found means verified** (`core.verify`): fresh, interleaved trials of candidate and
parent show the regression by at least the threshold (`judge.VERIFY_ALPHA`, or wholly
apart from 3 a side), the culprit like its part's bad end and the parent like its good
end, and (posterior search) the culprit's position holds 90%; otherwise it is the
`suspect`, INCONCLUSIVE. FOUND only when every part ended in a verified culprit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bisector.core import judge, noise, nullcheck, partsearch
from bisector.core.between import worse_than_bad
from bisector.core.outcome import HuntResult, HuntStep, Part, conclude
from bisector.core.partsearch import search_on, search_part, standing
from bisector.core.residual import residual_parts
from bisector.core.sampling import CandidateRule, Sampler
from bisector.core.search import CoarseFine
from bisector.core.stats import median
from bisector.core.types import Commit, MetricRule, Status, TrialBudget, Verdict
from bisector.core.verify import Found, verify
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

# Re-measure a range's ends after every this many probed candidates: drift (a GPU warming
# up, a neighbour's load) then moves the ends too, and is not read as a regression.
INTERLEAVE_EVERY = 3
# Under the lean rule a candidate costs one or two processes, so one end is re-measured
# every this many probes (alternating which).
LEAN_INTERLEAVE_EVERY = 6

#: The hunt's candidate rule when the caller names none (`sampling.CandidateRule`);
#: bench/simulate.py measured it against the others before it became the default.
HUNT_RULE: CandidateRule = "lean"
#: Settle a promising reproduction before verifying (True), or only when a part ends
#: unverified (False: verified wrong culprits, bench/simulate_cost.py `early3+verify-first`).
SETTLE_BEFORE_VERIFY = True

#: Under the lean rule, search each part by its posterior over the first bad commit, one
#: process at a time (`core.partsearch`; bench/simulate_cost.py `posterior` vs `trimmed`).
POSTERIOR_SEARCH = True
#: A verification given up because its fresh trials moved the posterior away
#: (`Found.abandoned`) sends its part back to the search at most this often.
SEARCH_ROUNDS = 3

__all__ = ["HUNT_RULE", "INTERLEAVE_EVERY", "Found", "HuntResult", "HuntStep", "hunt"]


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
    candidate_rule: CandidateRule | None = None,
    search: SearchFactory | None = None,
) -> HuntResult:
    """Reproduce, bisect every step, verify (see the module docstring).

    `candidate_rule` picks the candidate rule of `Sampler.decide`; `sequential` (older
    callers) True is "sequential", False "pinpoint"; neither: `HUNT_RULE`.
    `search` makes the search of each part (None: `CoarseFine`, one probe at a time;
    `multisect.multisection_factory(K)`: K points a round, for K parallel workers).
    """
    if candidate_rule is None:
        candidate_rule = HUNT_RULE if sequential is None else sequential_rule(sequential)
    hunter = _Hunter(commits, probe, metric, rule, budget, progress, prefetch, candidate_rule)
    hunter.search = search
    return hunter.run(tag_indices)


def sequential_rule(on: bool) -> CandidateRule:
    return "sequential" if on else "pinpoint"


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
        candidate_rule: CandidateRule = HUNT_RULE,
    ) -> None:
        if len(commits) < 2:
            raise ValueError("a hunt needs a good and a bad endpoint")
        self.commits, self.probe, self.metric = commits, probe, metric
        self.rule, self.budget = rule, budget
        self.progress, self.prefetch = progress, prefetch
        self.sampler = Sampler(probe, metric, rule, budget, progress, candidate_rule=candidate_rule)
        self.steps: list[HuntStep] = []
        self.skipped: set[int] = set()  # SKIP: could not be measured
        self.probes_done = 0
        self.search: SearchFactory | None = None
        self.rounds: dict[tuple[int, int], int] = {}  # searches again after an abandoned verify

    def samples(self, index: int) -> list[list[float]]:
        return self.sampler.samples(self.commits[index])

    def run(self, tag_indices: Sequence[int]) -> HuntResult:
        last = len(self.commits) - 1
        reproduction = self.sampler.settle_endpoints(self.commits[0], self.commits[-1])
        for index, verdict in ((0, Verdict.GOOD), (last, Verdict.BAD)):
            self.step("reproduce", index, verdict)
        measured = noise.measure(self.samples(0), self.samples(last))
        if not (reproduction.reproduced or self.sampler.promising(reproduction)):
            null = self._null_check()
            if not null.reproduction.reproduced:
                return self._no_regression(null)
            reproduction = null.reproduction
        baseline = median(judge.process_medians(self.samples(0)))
        warning = noise.threshold_warning(measured, self.rule, self.budget, baseline)
        if warning:  # once, before the search: the user may stop and fix the config
            self.progress(Warned(warning))
        parts = self.bisect(0, last, tag_indices)
        if not reproduction.reproduced and SETTLE_BEFORE_VERIFY:
            # Searched on a promising difference (lean): settle it before any verdict, so
            # a suspect is never named for a regression the endpoints do not show.
            settled = self._settle_endpoints()
            if isinstance(settled, HuntResult):
                return settled
            reproduction = settled
        founds, open_parts = self._settle(parts, reproduction)
        if not reproduction.reproduced and (open_parts or not all(f.verified for f in founds)):
            settled = self._settle_endpoints()
            if isinstance(settled, HuntResult):
                return settled
            reproduction = settled
        return self._result(reproduction, founds, open_parts, warning)

    def _settle_endpoints(self) -> judge.Comparison | HuntResult:
        """The reproduction settled on more endpoint trials, or the hunt's end without one."""
        reproduction = self.sampler.settle_endpoints(
            self.commits[0], self.commits[-1], provisional=False
        )
        if reproduction.reproduced:
            return reproduction
        null = self._null_check()
        return null.reproduction if null.reproduction.reproduced else self._no_regression(null)

    def _null_check(self) -> nullcheck.NullCheck:
        """Not reproduced: measure the endpoints on until a regression is ruled out or
        `repeats.max` is spent (`core.nullcheck`)."""
        ends = (self.commits[0], self.commits[-1])
        take = lambda c: self.take(c, "reproduce")  # noqa: E731
        return nullcheck.settle_null(self.probe, self.metric, self.rule, self.budget, ends, take)

    def _no_regression(self, null: nullcheck.NullCheck) -> HuntResult:
        """NOT_REPRODUCED when the endpoints rule a regression of the threshold out, else
        INCONCLUSIVE over the whole range, with the reason and the noise's suggestion."""
        last = len(self.commits) - 1
        good, bad = self.samples(0), self.samples(last)
        baseline = median(judge.process_medians(good))
        warning = noise.threshold_warning(
            noise.measure(good, bad), self.rule, self.budget, baseline
        )
        status, why = Status.NOT_REPRODUCED, ""
        if not null.rules_out:
            status, why = Status.INCONCLUSIVE, nullcheck.reason(null, self.rule, warning)
        else:  # the endpoints did rule it out: the noise allowed a verdict after all
            warning = None
        measured = noise.measure(good, bad, warning)
        steps = tuple(self.steps)
        return HuntResult(
            status, null.reproduction, (), None, 0, last, (), (), steps, measured, why
        )

    def _result(
        self,
        reproduction: judge.Comparison,
        founds: list[Found],
        open_parts: list[Part],
        warning: str | None,
    ) -> HuntResult:
        measured = noise.measure(self.samples(0), self.samples(len(self.commits) - 1), warning)
        return conclude(reproduction, founds, open_parts, self.skipped, tuple(self.steps), measured)

    def _settle(
        self, parts: list[Part], reproduction: judge.Comparison
    ) -> tuple[list[Found], list[Part]]:
        """Verify each narrowed part; search on where one is given up (`search_on`), or
        escalated once where one fails (lean); verified nothing more: the first stays."""
        founds: list[Found] = []
        open_parts: list[Part] = []
        queue = list(parts)
        while queue:
            part = queue.pop(0)
            if not part.narrowed:
                open_parts.append(part)
                continue
            found = self._verify(part.first_bad, reproduction, part.ends)
            if found.abandoned and self.rounds.get(part.ends, 0) < SEARCH_ROUNDS:
                self.rounds[part.ends] = self.rounds.get(part.ends, 0) + 1
                parts_again = search_on(self, part.ends, found.split_at)
            elif not found.verified and self.sampler.lean_now:
                self.sampler.escalated = True
                culprit = self.commits[part.first_bad]
                self.progress(
                    Warned(
                        f"culprit {culprit.short} failed verification: {found.note.removesuffix(' (unverified)')}; "
                        "bisecting its part again"
                    )
                )
                parts_again = self.bisect(*part.ends, [])
            else:
                founds.append(found)
                if found.verified:  # a second step beside it that the search placed wrong
                    queue += residual_parts(self, part.ends, found.index)
                continue
            again, still_open = self._settle(parts_again, reproduction)
            if any(f.verified for f in again):
                founds += again
                open_parts += still_open
            else:  # nothing better: the first candidate stays, unverified
                founds.append(found)
        return founds, open_parts

    # -- the search ---------------------------------------------------------------------

    def bisect(self, lo: int, hi: int, tag_indices: Sequence[int]) -> list[Part]:
        """Bisect (lo, hi] against lo (good) and hi (bad); split at a commit in between."""
        lean = self.sampler.candidate_rule == "lean"
        if POSTERIOR_SEARCH and lean and self.search is None:
            return search_part(self, lo, hi, tag_indices)
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
                return self.bisect(lo, index, inner) + self.bisect(index, hi, inner)
            search.record(k, verdict)
            if self.prefetch is not None:  # known before the interleave: its trials overlap them
                self.prefetch([self.commits[lo + j] for j in search.candidates_to_prefetch()])
            self._interleave(lo, hi)
        if self.prefetch is not None:  # nothing ahead: speculative work can stop
            self.prefetch([])
        result = search.result()
        return [
            Part(
                lo + result.last_good,
                lo + result.first_bad,
                result.found,
                tuple(lo + i for i in result.untestable),
                (lo, hi),
            )
        ]

    def _probe(self, index: int, lo: int, hi: int, phase: str) -> tuple[Verdict, bool]:
        """The candidate's verdict against lo and hi, and whether it lies between them."""
        commit = self.commits[index]
        self.compare(index, lo, hi)
        self.progress(ProbeStarted(phase, commit.short, commit.subject))
        decision = self.sampler.decide(commit, self.commits[lo], self.commits[hi], phase)
        verdict, between = decision.verdict, False
        if verdict is Verdict.SKIP:
            self.skipped.add(index)
        elif verdict is Verdict.UNCLEAR and decision.samples:
            trials = self.samples(index), self.samples(lo), self.samples(hi)
            between = judge.assess(*trials, self.rule).between
            if partsearch.BEYOND_SPLIT and worse_than_bad(*trials, self.rule):
                verdict, phase = Verdict.BAD, "beyond"  # the step lies before it
        self.step("split" if between else phase, index, verdict, decision.reason)
        return verdict, between

    def _interleave(self, lo: int, hi: int) -> None:
        """Every few probes, one more trial of each end of the range, alternating order."""
        self.probes_done += 1
        lean = self.sampler.lean_now
        if self.probes_done % (LEAN_INTERLEAVE_EVERY if lean else INTERLEAVE_EVERY):
            return
        pair: tuple[int, ...] = (lo, hi) if (self.probes_done // INTERLEAVE_EVERY) % 2 else (hi, lo)
        if lean:
            pair = pair[:1]  # one end at a time: the drift is slow, candidates are cheap
        for index in pair:
            self.take(self.commits[index], "interleave")

    def compare(self, candidate: int, *refs: int) -> None:
        """Before judging a candidate against its references (range ends; the parent in a
        verification): the probe's `compare(candidate, refs)`, where it has one (the ray
        executor reads the references on the candidate's kind of machine)."""
        if (compare := getattr(self.probe, "compare", None)) is not None:
            compare(self.commits[candidate], [self.commits[i] for i in refs])

    def take(self, commit: Commit, phase: str) -> None:
        self.progress(TrialStarted(phase, commit.short, len(self.probe.trials(commit)) + 1))
        self.probe.take(commit)

    def step(self, phase: str, index: int, verdict: Verdict, reason: str = "") -> None:
        commit = self.commits[index]
        samples = self.samples(index)
        mid = median(judge.process_medians(samples)) if samples else None
        self.steps.append(HuntStep(phase, index, verdict, len(samples), mid, reason))
        self.progress(
            VerdictReached(phase, commit.sha, commit.short, verdict, len(samples), mid, reason)
        )

    # -- verification -------------------------------------------------------------------

    def _verify(self, index: int, reproduction: judge.Comparison, ends: tuple[int, int]) -> Found:
        """Verify `index` against its parent (`core.verify`), like the ends of its part."""
        self.progress(PhaseStarted("verify"))
        self.compare(index, index - 1)
        return verify(
            self.probe,
            self.metric,
            self.rule,
            self.budget,
            index,
            (self.commits[index - 1], self.commits[index]),
            reproduction,
            lambda c: self.take(c, "verify"),
            (self.commits[ends[0]], self.commits[ends[1]]),
            standing=standing(self, ends, index) if self._posterior() else None,
            shortcuts=not self.sampler.escalated and ends not in self.rounds,
        )

    def _posterior(self) -> bool:
        return POSTERIOR_SEARCH and self.search is None and self.sampler.lean_now
