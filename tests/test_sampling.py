"""The core sampling loop over a fake probe: no git, no processes, only trials in memory."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from bisector.core.sampling import EndpointUnmeasurable, Sampler, printed_metrics, samples_of
from bisector.core.types import Commit, Direction, MetricRule, Threshold, TrialBudget, Verdict
from bisector.ports import ProgressEvent, TrialStarted

METRIC = "latency_ms"
RULE = MetricRule(Direction.LOWER, Threshold(0.05, relative=True))
BUDGET = TrialBudget(3, 12)
GOOD, BAD, CAND = (Commit(c * 40, c, "a", "2026-01-01") for c in "gbc")


@dataclass(frozen=True)
class FakeTrial:
    ok: bool
    metrics: Mapping[str, Sequence[float]]


@dataclass
class FakeProbe:
    """Each commit's trials come from a function of the trial number; takes are logged."""

    make: Mapping[str, Callable[[int], FakeTrial]]
    untestable_shas: set[str] = field(default_factory=set)
    recorded: dict[str, list[FakeTrial]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def take(self, commit: Commit) -> None:
        got = self.recorded.setdefault(commit.sha, [])
        got.append(self.make[commit.sha](len(got)))
        self.order.append(commit.subject)

    def trials(self, commit: Commit) -> list[FakeTrial]:
        return list(self.recorded.get(commit.sha, []))

    def untestable(self, commit: Commit) -> bool:
        return commit.sha in self.untestable_shas


def level(value: float, seed: int, metric: str = METRIC) -> Callable[[int], FakeTrial]:
    """Trials around `value` (1% process noise, 5 samples each)."""
    rng = random.Random(seed)

    def trial(_n: int) -> FakeTrial:
        centre = value * (1 + rng.gauss(0, 0.01))
        return FakeTrial(True, {metric: [centre * (1 + rng.gauss(0, 0.002)) for _ in range(5)]})

    return trial


def sampler(
    probe: FakeProbe, budget: TrialBudget = BUDGET, events: list[ProgressEvent] | None = None
) -> Sampler:
    return Sampler(
        probe, METRIC, RULE, budget, events.append if events is not None else lambda _e: None
    )


def test_endpoints_are_interleaved_good_first_and_the_one_behind_catches_up() -> None:
    """Endpoint trials alternate good, bad; after an uneven start the endpoint behind goes first."""
    probe = FakeProbe({GOOD.sha: level(20, 1), BAD.sha: level(26, 2)})
    for _ in range(3):
        probe.take(GOOD)
    probe.order.clear()
    comp = sampler(probe).settle_endpoints(GOOD, BAD)
    assert comp.reproduced
    assert probe.order[:3] == ["b", "b", "b"]
    assert probe.order[3:] == ["g", "b"] * ((len(probe.order) - 3) // 2)
    assert len(probe.trials(GOOD)) == len(probe.trials(BAD)) == 6  # MIN_ENDPOINT_PROCESSES


def test_candidate_is_decided_and_the_trials_are_counted_in_events() -> None:
    """A candidate like bad is BAD within the budget; each trial is announced with its number."""
    probe = FakeProbe({GOOD.sha: level(20, 1), BAD.sha: level(26, 2), CAND.sha: level(26, 3)})
    events: list[ProgressEvent] = []
    s = sampler(probe, events=events)
    s.settle_endpoints(GOOD, BAD)
    decision = s.decide(CAND, GOOD, BAD, "fine")
    assert decision.verdict is Verdict.BAD and decision.reason == ""
    assert decision.trials == decision.samples == len(probe.trials(CAND)) <= 12
    mine = [e for e in events if isinstance(e, TrialStarted) and e.phase == "fine"]
    assert [e.n for e in mine] == list(range(1, decision.trials + 1))
    assert all(e.commit == CAND.short for e in mine)


def test_unclear_candidate_stops_at_the_budget() -> None:
    """A candidate halfway between the endpoints stays UNCLEAR and gets exactly repeats.max trials."""
    probe = FakeProbe({GOOD.sha: level(20, 1), BAD.sha: level(26, 2), CAND.sha: level(23, 3)})
    s = sampler(probe, TrialBudget(3, 7))
    s.settle_endpoints(GOOD, BAD)
    decision = s.decide(CAND, GOOD, BAD, "fine")
    assert decision.verdict is Verdict.UNCLEAR
    assert decision.trials == len(probe.trials(CAND)) == 7


def test_trials_without_the_metric_count_and_end_as_skip_with_the_reason() -> None:
    """Trials that succeed without the metric use up the budget: SKIP after repeats.min of them."""
    other = level(26, 3, metric="latency")
    probe = FakeProbe({GOOD.sha: level(20, 1), BAD.sha: level(26, 2), CAND.sha: other})
    s = sampler(probe, TrialBudget(3, 12))
    s.settle_endpoints(GOOD, BAD)
    decision = s.decide(CAND, GOOD, BAD, "fine")
    assert decision.verdict is Verdict.SKIP
    assert len(probe.trials(CAND)) == decision.trials == 3 and decision.samples == 0
    assert decision.reason == "the benchmark printed latency but not latency_ms (3 trials)"


def test_sometimes_missing_metric_still_stops_at_the_budget() -> None:
    """A candidate that prints the metric in only some trials gets no more than repeats.max."""
    good_trial, bare = level(23, 3), FakeTrial(True, {"other": [1.0]})
    probe = FakeProbe(
        {
            GOOD.sha: level(20, 1),
            BAD.sha: level(26, 2),
            CAND.sha: lambda n: good_trial(n) if n % 3 == 0 else bare,
        }
    )
    s = sampler(probe, TrialBudget(3, 9))
    s.settle_endpoints(GOOD, BAD)
    decision = s.decide(CAND, GOOD, BAD, "fine")
    assert len(probe.trials(CAND)) == 9 and decision.samples == 3
    assert decision.verdict is Verdict.UNCLEAR


def test_untestable_candidate_is_skip_without_a_trial() -> None:
    """An untestable candidate is SKIP at once."""
    probe = FakeProbe(
        {GOOD.sha: level(20, 1), BAD.sha: level(26, 2), CAND.sha: level(26, 3)},
        untestable_shas={CAND.sha},
    )
    s = sampler(probe)
    s.settle_endpoints(GOOD, BAD)
    assert s.decide(CAND, GOOD, BAD, "fine").verdict is Verdict.SKIP
    assert probe.trials(CAND) == []


def test_endpoint_without_the_metric_is_an_error_naming_what_was_printed() -> None:
    """Endpoints whose trials lack the metric stop the loop after repeats.min trials each."""
    probe = FakeProbe({GOOD.sha: level(20, 1, "latency"), BAD.sha: level(26, 2, "latency")})
    with pytest.raises(EndpointUnmeasurable) as caught:
        sampler(probe, TrialBudget(4, 12)).settle_endpoints(GOOD, BAD)
    err = caught.value
    assert not err.untestable and err.side == "good"
    assert err.message == "the benchmark printed latency but not latency_ms"
    assert err.hint is not None and "--metric" in err.hint
    assert len(probe.order) == 8


def test_untestable_endpoint_is_an_error_before_any_trial() -> None:
    """An untestable endpoint raises at once, marked untestable."""
    probe = FakeProbe({GOOD.sha: level(20, 1), BAD.sha: level(26, 2)}, untestable_shas={BAD.sha})
    with pytest.raises(EndpointUnmeasurable) as caught:
        sampler(probe).settle_endpoints(GOOD, BAD)
    assert caught.value.untestable and caught.value.side == "bad" and probe.order == []


def test_endpoints_without_a_difference_stop_at_the_budget() -> None:
    """Identical endpoints end as not reproduced after repeats.max trials each, no more."""
    probe = FakeProbe({GOOD.sha: level(20, 1), BAD.sha: level(20, 2)})
    comp = sampler(probe, TrialBudget(3, 8)).settle_endpoints(GOOD, BAD)
    assert not comp.reproduced
    assert len(probe.trials(GOOD)) <= 8 and len(probe.trials(BAD)) <= 8


def test_samples_and_printed_metrics_read_only_ok_trials() -> None:
    """Failed trials carry no samples; printed metrics are the ok trials' names, sorted."""
    trials = [
        FakeTrial(True, {"b": [1.0], "a": [2.0]}),
        FakeTrial(False, {"c": [3.0]}),
        FakeTrial(True, {"b": []}),
    ]
    assert samples_of(trials, "b") == [[1.0]]
    assert printed_metrics(trials) == ["a", "b"]
