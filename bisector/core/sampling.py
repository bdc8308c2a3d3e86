"""The sampling loop: how many trials to take of the endpoints and of each candidate.

Two loops over a `Probe`, shared by the bisection (`engine.pipeline`) and isolation
(`isolate.states`):

- `settle_endpoints` measures both endpoints, interleaved, until the judge is settled
  about their difference (`judge.reproduced` / `judge.reproduction_needs_more`);
- `decide` measures a candidate until the judge decides it against the endpoints
  (`judge.assess` / `judge.needs_more`) or its budget is spent.

**The budget counts trials, not samples.** A trial can succeed without the configured
metric (the benchmark prints `latency` while the config asks for `latency_ms`); counting
samples of the metric, such a commit would never use up its budget and the loop would take
trials forever. So every commit gets at most `repeats.max` trials here, whatever they
printed, and a commit whose first `repeats.min` trials all lack the metric is *missing
the metric*: a candidate ends as SKIP with the reason, an endpoint stops the run with an
error that names the metrics the benchmark did print. Trials journaled earlier (a resumed
run, an earlier run of the same benchmark) count like new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bisector.core import judge, sequential
from bisector.core.sequential import SprtRule
from bisector.core.stats import median
from bisector.core.types import Commit, MetricRule, TrialBudget, Verdict
from bisector.errors import BisectorError
from bisector.ports import TrialStarted, no_progress

if TYPE_CHECKING:
    from bisector.ports import Probe, Progress, TrialSamples

Side = Literal["good", "bad"]

#: The candidate rules of `Sampler.decide`: "pinpoint" is the non-parametric rule
#: (`judge.assess`), "sequential" the SPRT with that rule as its guard
#: (`sequential.GUARDED`), "lean" the SPRT that lets one clear process decide, with the
#: culprit's verification as the non-parametric guard (`sequential.LEAN`; it needs the
#: hunt's verification and re-bisection, so only `core.hunt` asks for it).
#: bench/simulate.py measures them side by side (bench/RESULTS.md).
CandidateRule = Literal["pinpoint", "sequential", "lean"]

#: Which rule `Sampler.decide` uses by default (isolation's states keep it; the hunt
#: picks its own, `hunt.HUNT_RULE`). False: "pinpoint"; True: "sequential".
SEQUENTIAL_DEFAULT = False

#: Endpoint processes before the search under the lean rule. 3 a side cannot be
#: significant at `judge.REPRODUCE_ALPHA` (the exact p of 3 vs 3 is 0.1 at best), so the
#: search starts on a *promising* difference (`Sampler.promising`: 3 vs 3 completely
#: apart, the regressed way, by the threshold) and the reproduction is settled later:
#: a verified culprit is a significant regression by itself, and without one the hunt
#: measures the endpoints on until the reproduction test settles (`core.hunt`).
#: Otherwise more only while the difference is not yet significant.
LEAN_ENDPOINT_PROCESSES = 3
PROMISING_P = 0.1
#: Under the lean rule, a candidate still unclear after this many processes has the
#: range's ends measured as often as itself first (one more of the end with fewer, before
#: each of its next processes, to `judge.MIN_ENDPOINT_PROCESSES` a side at most): 3 end
#: processes a side give a rough picture of where good and bad lie, and a good-level
#: candidate measured against a good end whose 3 processes drew high looks "between" and
#: was measured to `repeats.max` (the 256-commit 10%-step case of bench/RESULTS.md: two
#: candidates at 12 processes each). 0: never. Simulated (bench/simulate_cost.py, 20,000
#: bisections a model) it is cheaper and more often right under every model without a
#: hog, and costs more executions under one; wrong exit 0 stays <= 0.1% everywhere.
ENDS_TOP_UP_AFTER = 3


def samples_of(trials: Sequence[TrialSamples], metric: str) -> list[list[float]]:
    """The samples of `metric` grouped by process: one list per ok trial that printed it."""
    return [list(t.metrics[metric]) for t in trials if t.ok and t.metrics.get(metric)]


def printed_metrics(trials: Sequence[TrialSamples]) -> list[str]:
    """Every metric name the ok trials printed, sorted."""
    return sorted({name for t in trials if t.ok for name in t.metrics})


class EndpointUnmeasurable(BisectorError):
    """An endpoint gives the judge nothing to compare: untestable, or without the metric.

    `untestable` tells the two apart; callers add a hint where they know one (the logs).
    """

    def __init__(
        self, message: str, *, side: Side, commit: Commit, untestable: bool, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.side, self.commit, self.untestable = side, commit, untestable


@dataclass(frozen=True)
class Decision:
    """What `decide` concluded about one candidate, and on how many trials."""

    verdict: Verdict
    trials: int
    samples: int  # processes that carried the metric
    reason: str = ""  # why SKIP, when it is


class Sampler:
    """The two loops for one metric over one probe (see the module docstring)."""

    def __init__(
        self,
        probe: Probe,
        metric: str,
        rule: MetricRule,
        repeats: TrialBudget,
        progress: Progress = no_progress,
        *,
        sequential: bool | None = None,
        candidate_rule: CandidateRule | None = None,
    ) -> None:
        self.probe, self.metric, self.rule, self.repeats = probe, metric, rule, repeats
        self.progress = progress
        if candidate_rule is None:
            on = SEQUENTIAL_DEFAULT if sequential is None else sequential
            candidate_rule = "sequential" if on else "pinpoint"
        self.candidate_rule: CandidateRule = candidate_rule
        self.escalated = False  # the lean rule after a failed verification (core.hunt)

    @property
    def sequential(self) -> bool:
        return self.candidate_rule != "pinpoint"

    def sprt_rule(self) -> SprtRule:
        """The SPRT's knobs for the current rule (see `core.sequential`)."""
        if self.candidate_rule == "lean":
            return sequential.ESCALATED if self.escalated else sequential.LEAN
        return sequential.GUARDED

    def endpoint_floor(self, provisional: bool = True) -> int:
        """Processes a side before the endpoints count as measured: fewer under the lean
        rule (3 for a promising difference, 4 to settle it: the fewest for which the
        reproduction test can be significant)."""
        if self.candidate_rule != "lean":
            return judge.MIN_ENDPOINT_PROCESSES
        if provisional and not self.escalated:
            return LEAN_ENDPOINT_PROCESSES
        return LEAN_ENDPOINT_PROCESSES + 1

    def samples(self, commit: Commit) -> list[list[float]]:
        return samples_of(self.probe.trials(commit), self.metric)

    @property
    def lean_now(self) -> bool:
        """The lean rule, not escalated (one clear process decides)."""
        return self.candidate_rule == "lean" and not self.escalated

    def promising(self, comparison: judge.Comparison) -> bool:
        """Under the lean rule: a difference worth a search before it is significant (see
        `LEAN_ENDPOINT_PROCESSES`)."""
        return self.lean_now and comparison.regressed and comparison.p_value <= PROMISING_P

    def missing(self, trials: Sequence[TrialSamples]) -> bool:
        """`repeats.min` trials (or more) and not one sample of the metric among them."""
        return len(trials) >= self.repeats.min and not samples_of(trials, self.metric)

    def _take(self, commit: Commit, phase: str, n: int) -> None:
        self.progress(TrialStarted(phase, commit.short, n))
        self.probe.take(commit)

    def missing_reason(self, trials: Sequence[TrialSamples]) -> str:
        return f"{self._printed_but_not(trials)} ({len(trials)} trials)"

    def _printed_but_not(self, trials: Sequence[TrialSamples]) -> str:
        """`the benchmark printed latency, p50 but not latency_ms` (the words of issue 12)."""
        printed = printed_metrics(trials)
        return f"the benchmark printed {', '.join(printed) or 'no metric'} but not {self.metric}"

    def settle_endpoints(
        self, good: Commit, bad: Commit, phase: str = "reproduce", *, provisional: bool = True
    ) -> judge.Comparison:
        """Measure both endpoints, interleaved, until their difference is settled (or,
        `provisional` and lean, `promising`).

        :raises EndpointUnmeasurable: an endpoint is untestable, misses the metric, or
            gave fewer than two processes with samples within its budget.
        """
        sides: tuple[tuple[Side, Commit], ...] = (("good", good), ("bad", bad))
        while True:
            for side, commit in sides:
                if self.probe.untestable(commit):
                    raise EndpointUnmeasurable(
                        f"the {side} endpoint {commit.short} cannot be measured",
                        side=side,
                        commit=commit,
                        untestable=True,
                    )
            tg, tb = self.probe.trials(good), self.probe.trials(bad)
            for (side, commit), trials in zip(sides, (tg, tb), strict=True):
                if self.missing(trials):
                    raise self._no_metric(side, commit, trials)
            gs, bs = samples_of(tg, self.metric), samples_of(tb, self.metric)
            if len(gs) >= 2 and self.rule.threshold.relative:
                self._check_baseline(good, gs)
            n = min(len(gs), len(bs))
            comparison = judge.reproduced(gs, bs, self.rule) if n >= 2 else None
            floor = self.endpoint_floor(provisional)
            if comparison is not None and (
                (provisional and n >= floor and self.promising(comparison))
                or not judge.reproduction_needs_more(comparison, n, self.repeats, floor)
            ):
                return comparison
            done = min(len(tg), len(tb))
            if done >= self.repeats.max:  # the budget is spent
                if comparison is not None:
                    return comparison
                side, commit, trials = ("good", good, tg) if len(gs) < 2 else ("bad", bad, tb)
                raise self._no_metric(side, commit, trials)
            # Interleave endpoint trials so drift over time hits both alike; the one behind
            # (after a resume, say) goes first.
            for commit, trials in (
                ((good, tg), (bad, tb)) if len(tg) <= len(tb) else ((bad, tb), (good, tg))
            ):
                if len(trials) <= done:
                    self._take(commit, phase, len(trials) + 1)

    def _check_baseline(self, good: Commit, gs: judge.Samples) -> None:
        """A relative threshold of a good endpoint at 0 is no threshold: every shift would
        count, and no range of noise could rule one out (QA: a benchmark printing zeros
        was measured to `repeats.max` and ended exit 4 blaming the noise)."""
        if median(judge.process_medians(gs)) != 0:
            return
        raise EndpointUnmeasurable(
            f"the good endpoint {good.short} measures {self.metric} at 0, so its relative "
            f"threshold ({self.rule.threshold}) is no threshold",
            side="good",
            commit=good,
            untestable=False,
            hint=f"give {self.metric} an absolute threshold in its units in bisector.yaml "
            f"(metrics: {{{self.metric}: {{threshold: 0.5}}}}), or check what the benchmark measures",
        )

    def _no_metric(
        self, side: Side, commit: Commit, trials: Sequence[TrialSamples]
    ) -> EndpointUnmeasurable:
        have = len(samples_of(trials, self.metric))
        message = (
            f"the {side} endpoint {commit.short} cannot be compared: only {have} of its "
            f"{len(trials)} trials printed the metric {self.metric}"
            if have
            else self._printed_but_not(trials)
        )
        return EndpointUnmeasurable(
            message,
            side=side,
            commit=commit,
            untestable=False,
            hint=f"at the {side} endpoint {commit.short}: set --metric or `metrics:` in bisector.yaml "
            "to a metric the benchmark prints",
        )

    def decide(self, commit: Commit, good: Commit, bad: Commit, phase: str) -> Decision:
        """Measure `commit` until it is judged against the endpoints or its budget is spent.

        SKIP when it is untestable or misses the metric; UNCLEAR when still unclear at
        `repeats.max` trials.
        """
        while True:
            trials = self.probe.trials(commit)
            if self.probe.untestable(commit):
                return Decision(Verdict.SKIP, len(trials), len(samples_of(trials, self.metric)))
            if self.missing(trials):
                return Decision(Verdict.SKIP, len(trials), 0, self.missing_reason(trials))
            cs = samples_of(trials, self.metric)
            verdict = Verdict.UNCLEAR
            if cs:
                if self.sequential:
                    srule = self.sprt_rule()
                    verdict = sequential.decide(
                        cs, self.samples(good), self.samples(bad), self.rule, self.repeats, srule
                    )
                    more = sequential.needs_more(verdict, len(cs), self.repeats, srule)
                else:
                    verdict = judge.assess(
                        cs, self.samples(good), self.samples(bad), self.rule
                    ).verdict
                    more = judge.needs_more(verdict, len(cs), self.repeats)
                if not more:
                    return Decision(verdict, len(trials), len(cs))
            if len(trials) >= self.repeats.max:
                if not cs:
                    return Decision(Verdict.SKIP, len(trials), 0, self.missing_reason(trials))
                return Decision(verdict, len(trials), len(cs))
            if not self.top_up_ends(len(cs), good, bad):
                self._take(commit, phase, len(trials) + 1)

    def top_up_ends(self, processes: int, good: Commit, bad: Commit) -> bool:
        """One more trial of the end with fewer, when the lean rule's candidate is unclear
        after `ENDS_TOP_UP_AFTER` processes and has more than it (see there)."""
        if not (self.lean_now and ENDS_TOP_UP_AFTER and processes >= ENDS_TOP_UP_AFTER):
            return False
        n, end = min(((len(self.probe.trials(c)), c) for c in (good, bad)), key=lambda e: e[0])
        if n >= min(processes, judge.MIN_ENDPOINT_PROCESSES, self.repeats.max):
            return False
        self._take(end, "interleave", n + 1)
        return True
