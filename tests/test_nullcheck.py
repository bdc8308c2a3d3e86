"""Not reproduced only when the endpoints rule a regression out; else inconclusive (pure, fake probe)."""

from __future__ import annotations

import math
import random
import re

from bisector.core import judge, noise, nullcheck
from bisector.core.hunt import hunt
from bisector.core.stats import median
from bisector.core.types import (
    MAX_REPEATS,
    Direction,
    MetricRule,
    Status,
    Threshold,
    TrialBudget,
)
from bisector.ports import ProgressEvent, TrialStarted
from tests.test_hunt import BUDGET, COMMITS, METRIC, RULE, FakeProbe, run, steps_at


def _hog_hides_step(seed: int) -> FakeProbe:
    """A +25% step at 13 and a hog that lifts 60% of the processes before it (30% after it)
    by 20-50%: the endpoints' processes overlap (seeded)."""
    rng = random.Random(seed)

    def level(i: int, _n: int) -> float:
        hog = rng.uniform(0.2, 0.5) if rng.random() < (0.6 if i < 13 else 0.3) else 0.0
        return 20.0 * (1.25 if i >= 13 else 1.0) * (1 + hog)

    return FakeProbe(level, seed=seed)


def test_endpoints_too_noisy_to_rule_out_the_regression_are_inconclusive() -> None:
    """A hog that hides a +25% step gives INCONCLUSIVE over the whole range with the reason."""
    probe = _hog_hides_step(1)
    events: list[ProgressEvent] = []
    result = run(probe, events)
    assert result.status is Status.INCONCLUSIVE and result.status.exit_code == 4
    assert not result.reproduction.reproduced
    assert result.culprits == () and result.suspect is None
    assert (result.last_good, result.first_bad) == (0, len(COMMITS) - 1)
    assert "cannot rule out a regression of the threshold 5%" in result.reason
    assert result.noise.warning is not None and result.noise.warning in result.reason
    # the endpoints were measured up to repeats.max before saying so; no candidate was
    assert set(probe.recorded) == {COMMITS[0].sha, COMMITS[-1].sha}
    assert min(len(t) for t in probe.recorded.values()) == BUDGET.max
    assert all(e.phase == "reproduce" for e in events if isinstance(e, TrialStarted))


def test_quiet_range_without_a_regression_is_still_not_reproduced() -> None:
    """1% process noise and no step: the bound is far below 5%, NOT_REPRODUCED with no reason."""
    result = run(FakeProbe(steps_at()))
    assert result.status is Status.NOT_REPRODUCED and result.status.exit_code == 3
    assert result.reason == ""


def test_not_reproduced_carries_no_noise_warning() -> None:
    """3% process noise, no step, repeats.max 6: before the verdict the power rule says a
    5% threshold is below what 6 trials can show, but the endpoints did rule a regression
    of 5% out (NOT_REPRODUCED), so the document does not contradict its own verdict."""
    rng = random.Random(0)
    budget = TrialBudget(3, 6)

    def level(_i: int, _n: int) -> float:
        return 20.0 * (1 + rng.gauss(0, 0.03))

    probe = FakeProbe(level, seed=0)
    result = hunt(COMMITS, [], probe, METRIC, RULE, budget)
    good, bad = (
        [list(t.metrics[METRIC]) for t in probe.trials(c)] for c in (COMMITS[0], COMMITS[-1])
    )
    baseline = median(judge.process_medians(good))
    said = noise.threshold_warning(noise.measure(good, bad), RULE, budget, baseline)
    assert said is not None and "6 + 6 processes" in said  # the rule alone would warn
    assert result.status is Status.NOT_REPRODUCED and result.noise.warning is None


def test_a_small_significant_change_below_the_threshold_is_not_reproduced() -> None:
    """+3% (below the 5% threshold) with 1% noise: the bound lies below 5%."""
    rng = random.Random(5)

    def level(i: int, _n: int) -> float:
        return 20.0 * (1.03 if i >= 13 else 1.0) * (1 + rng.gauss(0, 0.006))

    probe = FakeProbe(level)
    result = run(probe)
    assert result.status is Status.NOT_REPRODUCED, result.reason
    worst = nullcheck.worst_regression(
        [list(t.metrics[METRIC]) for t in probe.trials(COMMITS[0])],
        [list(t.metrics[METRIC]) for t in probe.trials(COMMITS[-1])],
        RULE,
    )
    assert 0.02 < worst < 0.05


def test_worst_regression_reads_the_direction_and_needs_enough_processes() -> None:
    """Lower-is-better bounds bad - good from above; higher-is-better bounds good - bad; 2 vs 2 cannot."""
    good = [[100.0 + d] for d in (0.0, 1.0, -1.0, 0.5, -0.5, 0.2)]
    bad = [[110.0 + d] for d in (0.0, 1.0, -1.0, 0.5, -0.5, 0.2)]
    lower = nullcheck.worst_regression(good, bad, RULE)
    assert 0.10 < lower < 0.13
    higher = MetricRule(Direction.HIGHER, Threshold(0.05, relative=True))
    assert nullcheck.worst_regression(good, bad, higher) < -0.07  # better, at worst
    assert nullcheck.worst_regression(bad, good, higher) > 0.07
    assert math.isinf(nullcheck.worst_regression(good[:2], bad[:2], RULE))


def test_settle_null_stops_at_repeats_max_and_says_it_could_not_rule_out() -> None:
    """Endpoints that a hog hides a step in are measured to repeats.max a side, then not ruled out."""
    probe = _hog_hides_step(1)
    ends = (COMMITS[0], COMMITS[-1])
    for c in ends:
        for _ in range(3):
            probe.take(c)
    check = nullcheck.settle_null(probe, METRIC, RULE, TrialBudget(3, 8), ends, probe.take)
    assert not check.rules_out and check.worst >= 0.05 and check.processes == 8
    assert "up to" in nullcheck.reason(check, RULE, None)
    assert "raise repeats.max" in nullcheck.reason(check, RULE, None)


def _warning(cv: float, threshold: float, repeats_max: int) -> str | None:
    side = noise.EndpointNoise(cv, 0.0, 0.0, 6)
    rule = MetricRule(Direction.LOWER, Threshold(threshold, relative=True))
    return noise.threshold_warning(noise.Noise(side, side), rule, TrialBudget(3, repeats_max), 20.0)


def test_the_noise_warning_suggests_a_repeats_max_the_config_accepts() -> None:
    """Within the maximum: both remedies. Above it (83850 and the like): the threshold only."""
    said = _warning(0.05, 0.05, 15)
    assert said is not None and "raise repeats.max to 24, or set the threshold to" in said
    said = _warning(0.5, 0.01, 15)
    assert said is not None
    assert "raise repeats.max" not in said
    needed = math.ceil(2 * (noise.Z_DETECT * 0.5 / 0.01) ** 2)
    assert needed > MAX_REPEATS
    assert said.endswith(
        f"processes): set the threshold to 62.5% (repeats.max would need {needed}, "
        f"above its maximum {MAX_REPEATS})"
    )
    # just below the maximum is still suggested
    cv = 0.01 * math.sqrt(MAX_REPEATS / 2) / noise.Z_DETECT * 0.999
    found = re.search(r"raise repeats\.max to (\d+), or", _warning(cv, 0.01, 15) or "")
    assert found is not None and 0.99 * MAX_REPEATS < int(found[1]) <= MAX_REPEATS


def test_two_ends_at_exactly_zero_with_a_zero_threshold_are_not_reproduced() -> None:
    """A zero threshold counts any worsening; two ends at exactly 0 (an error count of 0)
    show none, so the regression is ruled out (exit 4 before: "bad may be any amount worse")."""
    zero = MetricRule(Direction.LOWER, Threshold(0.0, relative=False))
    probe = FakeProbe(lambda _i, _n: 0.0)
    result = hunt(COMMITS, [], probe, METRIC, zero, BUDGET, lambda _e: None)
    assert result.status is Status.NOT_REPRODUCED, result.reason
