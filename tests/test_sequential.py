"""The sequential candidate rule (core/sequential.py) on fixed samples, and in the sampling loop."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from bisector.core import sequential
from bisector.core.sampling import Sampler
from bisector.core.types import Commit, Direction, MetricRule, Threshold, TrialBudget, Verdict

RULE = MetricRule(Direction.LOWER, Threshold(0.05, relative=True))
BUDGET = TrialBudget(3, 15)
# Endpoints 10% apart with a 1% spread between processes: one sample per process.
GOOD = [[v] for v in (99.0, 100.0, 101.0, 100.5, 99.5, 100.2)]
BAD = [[v] for v in (109.0, 110.0, 111.0, 110.5, 109.5, 110.2)]


def medians(samples: list[list[float]]) -> list[float]:
    return [s[0] for s in samples]


def test_wald_boundaries() -> None:
    """The boundaries are log(beta / (1 - alpha)) and log((1 - beta) / alpha)."""
    lower, upper = sequential.boundaries(0.001, 0.01)
    assert lower == pytest.approx(math.log(0.01 / 0.999))
    assert upper == pytest.approx(math.log(0.99 / 0.001))
    with pytest.raises(ValueError):
        sequential.boundaries(0.6, 0.5)


def test_processes_on_an_endpoint_move_the_ratio_towards_it() -> None:
    """Candidates on bad push the ratio up, on good down; halfway leaves it near zero."""
    good, bad = medians(GOOD), medians(BAD)
    assert sequential.evidence([110.1, 109.8], good, bad).proposal is Verdict.BAD
    assert sequential.evidence([100.1, 99.8], good, bad).proposal is Verdict.GOOD
    halfway = sequential.evidence([105.0, 105.1, 104.9], good, bad)
    assert halfway.proposal is Verdict.UNCLEAR and abs(halfway.llr) < 1


def test_one_process_never_crosses_a_boundary() -> None:
    """However clearly bad, a single process moves the ratio at most half way."""
    ev = sequential.evidence([110.0], medians(GOOD), medians(BAD))
    assert ev.proposal is Verdict.UNCLEAR
    assert ev.llr == pytest.approx(ev.upper / sequential.MIN_PROCESSES)


def test_an_outlier_far_from_both_endpoints_counts_for_little() -> None:
    """A cold or CPU-hogged process (+40%) is an outlier, not a very bad process."""
    ev = sequential.evidence([140.0, 100.2], medians(GOOD), medians(BAD))
    assert ev.llr < 0  # the one ordinary process, like good, outweighs it
    assert abs(sequential.evidence([140.0], medians(GOOD), medians(BAD)).llr) < 0.5


def test_spread_is_robust_and_floored() -> None:
    """One wild endpoint process does not widen the spread; identical ones do not shrink it to 0."""
    wild = [*medians(GOOD), 180.0]
    assert sequential.pooled_spread(wild, medians(BAD)) < 2.0
    assert sequential.pooled_spread([100.0] * 6, [110.0] * 6) == pytest.approx(
        10 * sequential.MIN_SPREAD_FRACTION
    )
    share = sequential.outlier_share(
        wild, medians(BAD), sequential.pooled_spread(wild, medians(BAD))
    )
    assert share == pytest.approx(1 / 13)


def test_decide_gives_verdicts_from_two_processes() -> None:
    """Two processes on an endpoint decide; one, or two halfway, stay unclear."""
    assert sequential.decide([[110.1], [109.8]], GOOD, BAD, RULE, BUDGET) is Verdict.BAD
    assert sequential.decide([[100.1], [99.8]], GOOD, BAD, RULE, BUDGET) is Verdict.GOOD
    assert sequential.decide([[110.1]], GOOD, BAD, RULE, BUDGET) is Verdict.UNCLEAR
    assert sequential.decide([[105.0], [105.2]], GOOD, BAD, RULE, BUDGET) is Verdict.UNCLEAR


def test_decide_needs_the_guard_to_agree() -> None:
    """Two outliers beyond bad cross nothing; endpoints that do not differ decide nothing."""
    assert sequential.decide([[140.0], [141.0]], GOOD, BAD, RULE, BUDGET) is Verdict.UNCLEAR
    assert sequential.decide([[100.0], [100.1]], GOOD, GOOD, RULE, BUDGET) is Verdict.UNCLEAR
    # 2 vs 3 processes cannot reach the guard's alpha (min p = 0.2): no verdict yet
    assert sequential.decide([[110.1], [109.8]], GOOD[:3], BAD[:3], RULE, BUDGET) is Verdict.UNCLEAR


def test_decide_for_a_metric_where_higher_is_better() -> None:
    """Throughput: bad is lower; the rule is symmetric in the direction."""
    rule = MetricRule(Direction.HIGHER, Threshold(0.05, relative=True))
    good = [[200 - v[0]] for v in GOOD]  # ~100
    bad = [[200 - v[0]] for v in BAD]  # ~90
    assert sequential.decide([[90.1], [89.8]], good, bad, rule, BUDGET) is Verdict.BAD
    assert sequential.decide([[100.1], [99.9]], good, bad, rule, BUDGET) is Verdict.GOOD


def test_the_non_parametric_verdict_stands_when_it_has_one() -> None:
    """From repeats.min processes on, the judge's own verdict wins over the ratio."""
    cand = [[110.0], [109.9], [110.1], [110.2]]
    assert sequential.decide(cand, GOOD, BAD, RULE, BUDGET) is Verdict.BAD


def test_needs_more() -> None:
    """Below two processes always; then only while unclear and below repeats.max."""
    assert sequential.needs_more(Verdict.BAD, 1, BUDGET)
    assert not sequential.needs_more(Verdict.BAD, 2, BUDGET)
    assert sequential.needs_more(Verdict.UNCLEAR, 14, BUDGET)
    assert not sequential.needs_more(Verdict.UNCLEAR, 15, BUDGET)
    assert sequential.needs_more(Verdict.UNCLEAR, 0, TrialBudget(1, 1))
    assert not sequential.needs_more(Verdict.UNCLEAR, 1, TrialBudget(1, 1))


@dataclass(frozen=True)
class Trial:
    ok: bool
    metrics: Mapping[str, Sequence[float]]


@dataclass
class ListProbe:
    """Each commit's trials are taken, in order, from a fixed list of process medians."""

    values: Mapping[str, list[float]]
    taken: dict[str, list[Trial]] = field(default_factory=dict)

    def take(self, commit: Commit) -> None:
        got = self.taken.setdefault(commit.sha, [])
        got.append(Trial(True, {"latency_ms": [self.values[commit.sha][len(got)]]}))

    def trials(self, commit: Commit) -> list[Trial]:
        return list(self.taken.get(commit.sha, []))

    def untestable(self, commit: Commit) -> bool:  # noqa: ARG002 (the Probe port)
        return False


def test_sampler_switch_takes_fewer_trials_for_a_clear_candidate() -> None:
    """The same clear-cut candidate: 2 trials with the sequential rule, 4 without."""
    g, b, c = (Commit(x * 40, x, "a", "2026-01-01") for x in "gbc")
    values = {
        g.sha: medians(GOOD) * 3,
        b.sha: medians(BAD) * 3,
        c.sha: [110.1, 109.8, 110.3, 109.9, 110.0, 110.2],
    }
    taken = {}
    for switch in (False, True):
        probe = ListProbe(values)
        sampler = Sampler(probe, "latency_ms", RULE, BUDGET, sequential=switch)
        sampler.settle_endpoints(g, b)
        decision = sampler.decide(c, g, b, "fine")
        assert decision.verdict is Verdict.BAD
        taken[switch] = decision.trials
    assert taken == {False: 4, True: 2}
