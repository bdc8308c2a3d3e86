"""Pure judgements of the guard: a check's `for` window (rules) and the canary (canary)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from bisector.core.types import Direction, MetricRule, Threshold
from bisector.guard.canary import CanaryVerdict, judge_canary, min_samples
from bisector.guard.prometheus import Blind, Data, Series, parse_answer
from bisector.guard.rules import (
    CheckState,
    Limit,
    judge_check,
    merge_series,
    samples_needed,
    show_value,
    wire,
)

NOW = 1_000_000.0
INF = math.inf
MAX = Limit(max=0.2)


def series(values: list[float], step: float = 1.0, end: float = NOW) -> list[tuple[float, float]]:
    """Samples at `step` ending at `end`, oldest first."""
    return [(end - step * (len(values) - 1 - i), v) for i, v in enumerate(values)]


def test_held_breach_over_the_whole_window_is_breached() -> None:
    """Every sample of a fully covered 5 s window past the limit: breached."""
    j = judge_check(series([0.5] * 6), MAX, for_s=5, interval_s=1, now=NOW)
    assert j.state is CheckState.BREACHED and j.value == 0.5 and j.samples == j.needed == 6


def test_spike_shorter_than_for_is_pending() -> None:
    """A spike of 3 s inside a 5 s window is pending, not breached."""
    j = judge_check(series([0.1, 0.1, 0.1, 0.5, 0.5, 0.5]), MAX, for_s=5, interval_s=1, now=NOW)
    assert j.state is CheckState.PENDING


def test_spike_that_ended_is_ok() -> None:
    """The newest sample back within the limit: ok, whatever came before."""
    j = judge_check(series([0.5, 0.5, 0.5, 0.5, 0.5, 0.1]), MAX, for_s=5, interval_s=1, now=NOW)
    assert j.state is CheckState.OK and j.value == 0.1


def test_too_few_samples_is_pending_not_breached() -> None:
    """All past the limit but the window is not covered yet (a fresh server): pending."""
    j = judge_check(series([0.5] * 3), MAX, for_s=5, interval_s=1, now=NOW)
    assert j.state is CheckState.PENDING and j.needed == 6


def test_gap_in_the_window_is_pending() -> None:
    """A missing step inside the window: not fully covered, so pending."""
    samples = [s for i, s in enumerate(series([0.5] * 6)) if i != 2]
    assert judge_check(samples, MAX, for_s=5, interval_s=1, now=NOW).state is CheckState.PENDING


def test_no_samples_or_stale_samples_are_blind() -> None:
    """No data, or only old data: blind (never ok, never a breach)."""
    assert judge_check([], MAX, 5, 1, NOW).state is CheckState.BLIND
    assert judge_check(series([0.5] * 3, end=NOW - 4), MAX, 5, 1, NOW).state is CheckState.BLIND


def test_min_limit_breaches_below() -> None:
    """A `min` limit (throughput) breaches when below it for the window."""
    j = judge_check(series([5.0] * 6), Limit(min=10.0), 5, 1, NOW)
    assert j.state is CheckState.BREACHED


def test_reasons_say_the_limit_and_on_which_side_it_breaches() -> None:
    """The reason names the limit as a limit and the side it breaches on, never `(> 0.2)`
    (which read as the limit while it is when the check breaches): ok, at the limit,
    pending, breached over `5m`, and a `min` check."""

    def reason(values: list[float], limit: Limit, for_s: float = 5, step: float = 1) -> str:
        return judge_check(series(values, step=step), limit, for_s, step, NOW).reason

    assert reason([0.0994664], MAX) == "0.0995, limit 0.2 (breaches above)"
    assert reason([1.0], Limit(max=1)) == "1, limit 1 (breaches above)"
    assert reason([12.5], Limit(min=10)) == "12.5, limit 10 (breaches below)"
    assert reason([0.1, 0.1, 0.1, 0.35, 0.35, 0.35], MAX).startswith(
        "0.35 above the limit 0.2 for "
    )
    assert reason([0.35] * 21, MAX, for_s=300, step=15) == (
        "0.35 above the limit 0.2 for 5m: 0.35..0.35 over 21 samples"
    )
    assert reason([5.0] * 6, Limit(min=10)) == "5 below the limit 10 for 5s: 5..5 over 6 samples"
    # Just past the limit: enough digits that the value does not read as the limit.
    assert reason([0.20004] * 6, MAX).startswith("0.20004 above the limit 0.2 for 5s: 0.20004..")
    assert reason([6543.21], Limit(max=8192)) == "6543, limit 8192 (breaches above)"


def test_fluctuating_soak_under_the_limit_never_breaches() -> None:
    """A soak of random values under the limit, with rare single excursions, stays ok or pending."""
    rng = random.Random(7)
    values = [rng.uniform(0.05, 0.19) if rng.random() > 0.1 else 0.3 for _ in range(200)]
    for end in range(6, 200):
        window = series(values[end - 6 : end])
        assert judge_check(window, MAX, 5, 1, NOW).state is not CheckState.BREACHED


def test_several_series_are_judged_by_the_worst() -> None:
    """Of several series at an instant, the one past the limit counts."""
    merged = merge_series([series([0.1] * 6), series([0.5] * 6)], MAX)
    assert judge_check(merged, MAX, 5, 1, NOW).state is CheckState.BREACHED


def test_samples_needed_counts_both_ends() -> None:
    """A 5 s window at 1 s steps holds 6 samples; 5 m at 15 s holds 21."""
    assert samples_needed(5, 1) == 6 and samples_needed(300, 15) == 21


def test_limit_needs_exactly_one_bound() -> None:
    """A limit with both or neither bound is refused."""
    with pytest.raises(ValueError):
        Limit()
    with pytest.raises(ValueError):
        Limit(max=1, min=0)


RULE = MetricRule(Direction.LOWER, Threshold(0.05, relative=True))


def noisy(center: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.gauss(0, 0.01)) for _ in range(n)]


def test_canary_worse_fails() -> None:
    """A canary 30% slower than its baseline fails."""
    r = judge_canary(noisy(100, 30, 1), noisy(130, 30, 2), RULE)
    assert (
        r.verdict is CanaryVerdict.FAIL
        and r.relative_effect is not None
        and r.relative_effect > 0.25
    )


def test_canary_equal_passes() -> None:
    """A canary like its baseline (within 1% noise, threshold 5%) passes."""
    assert judge_canary(noisy(100, 30, 3), noisy(100, 30, 4), RULE).verdict is CanaryVerdict.PASS


def test_canary_with_too_few_samples_is_inconclusive() -> None:
    """Fewer samples than any verdict needs: inconclusive, even when the shift is large."""
    n = min_samples() - 1
    r = judge_canary([100.0] * n, [200.0] * n, RULE)
    assert r.verdict is CanaryVerdict.INCONCLUSIVE and "too few" in r.reason


def test_canary_noisy_near_threshold_is_inconclusive() -> None:
    """Wide noise that neither shows nor rules out a 5% worsening: inconclusive."""
    r = judge_canary(noisy(100, 5, 5)[:2] + [80, 120, 100], [104, 90, 118, 101, 110], RULE)
    assert r.verdict is CanaryVerdict.INCONCLUSIVE


def test_canary_direction_higher() -> None:
    """For a higher-is-better metric a lower canary fails."""
    rule = MetricRule(Direction.HIGHER, Threshold(0.05, relative=True))
    assert judge_canary(noisy(100, 20, 6), noisy(80, 20, 7), rule).verdict is CanaryVerdict.FAIL


@pytest.mark.parametrize("direction", [Direction.LOWER, Direction.HIGHER])
def test_a_canary_equal_to_a_baseline_of_zero_passes(direction: Direction) -> None:
    """Error ratios of 0 on both sides (a 5% threshold of 0 is 0): the canary is not worse
    at all, so it passes; it was inconclusive (alert and pause) for want of a shift below 0."""
    rule = MetricRule(direction, Threshold(0.05, relative=True))
    r = judge_canary([0.0] * 20, [0.0] * 20, rule)
    assert r.verdict is CanaryVerdict.PASS, r


def test_a_canary_worse_than_a_baseline_of_zero_says_by_how_much() -> None:
    """From a baseline of 0 every worsening fails; the reason says the shift in the metric's
    units, not `+0.0%` (no percentage of 0 exists)."""
    r = judge_canary([0.0] * 20, [0.01] * 20, RULE)
    assert r.verdict is CanaryVerdict.FAIL and r.relative_effect is None, r
    assert "+0.0%" not in r.reason and "+0.01 from a baseline of 0" in r.reason, r.reason


def test_an_infinite_canary_against_a_finite_baseline_fails() -> None:
    """A canary at +Inf (a latency ratio over no successful request) against a finite
    baseline is worse by any threshold: fail (its samples were dropped: too few, inconclusive).
    For a higher-is-better metric -Inf is the worse infinity."""
    r = judge_canary([100.0] * 10, [INF] * 10, RULE)
    assert (r.verdict, r.canary_median, r.relative_effect) == (CanaryVerdict.FAIL, INF, None), r
    assert r.reason.startswith("canary worse by at least 5%: +Inf vs 100 (p="), r.reason
    higher = MetricRule(Direction.HIGHER, Threshold(0.05, relative=True))
    assert judge_canary(noisy(100, 10, 8), [-INF] * 10, higher).verdict is CanaryVerdict.FAIL


@pytest.mark.parametrize(
    ("baseline", "canary"),
    [
        ([INF] * 10, [INF] * 10),  # both infinite: no shift to measure
        ([INF] * 10, [100.0] * 10),  # the baseline infinite
        ([100.0 + i for i in range(10)], [-INF] * 10),  # infinitely *better*: not a measurement
        ([100.0 + i for i in range(10)], [INF] * 5 + [-INF] * 5),  # a median of NaN
    ],
)
def test_an_infinite_median_otherwise_is_inconclusive(
    baseline: list[float], canary: list[float]
) -> None:
    """Any other infinite median cannot be judged by a threshold: inconclusive (pause, never promote)."""
    r = judge_canary(baseline, canary, RULE)
    assert r.verdict is CanaryVerdict.INCONCLUSIVE, r
    assert "a median is not finite" in r.reason, r.reason


def test_a_few_infinite_samples_are_ranked_past_every_finite_one() -> None:
    """Finite medians with a few ±Inf samples are judged as usual (infinities of one sign on
    both sides are ties, not NaN shifts), and the reason counts them."""
    r = judge_canary(noisy(100, 20, 9) + [INF] * 2, noisy(130, 20, 10) + [INF] * 2, RULE)
    assert r.verdict is CanaryVerdict.FAIL and r.relative_effect is not None, r
    assert 0.25 < r.relative_effect < 0.35 and "(±Inf samples: baseline 2, canary 2)" in r.reason
    # inf - inf was NaN: the sort of the shifts came out of order, the shift -2.9%.
    same = judge_canary(noisy(100, 30, 0) + [INF] * 4, noisy(100, 30, 50) + [INF] * 4, RULE)
    assert same.verdict is CanaryVerdict.PASS and same.relative_effect is not None, same
    assert 0 < same.relative_effect < 0.01, same.reason


def test_prometheus_answers_parse_and_empty_or_errors_are_blind() -> None:
    """A matrix parses to series (NaN dropped); empty, error and garbage answers are blind."""
    ok = parse_answer(
        b'{"status":"success","data":{"resultType":"matrix","result":'
        b'[{"metric":{"a":"b"},"values":[[1,"0.5"],[2,"NaN"]]}]}}'
    )
    assert isinstance(ok, Data) and ok.series[0].samples == ((1.0, 0.5),)
    assert isinstance(
        parse_answer(b'{"status":"success","data":{"resultType":"vector","result":[]}}'), Blind
    )
    assert isinstance(parse_answer(b'{"status":"error","error":"parse error"}'), Blind)
    assert isinstance(parse_answer(b"<html>"), Blind)


def test_infinite_values_are_values_and_only_nan_is_blind() -> None:
    """`1/0` answers +Inf: a value (it was dropped as "no data", so a check past its
    limit by all of infinity was blind and never acted); NaN alone is blind, and says so."""
    body = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"+Inf"],[2,"-Inf"],[3,"NaN"]]}]}}'
    assert parse_answer(body) == Data((Series((), ((1.0, math.inf), (2.0, -math.inf))),))
    nan = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}'
    assert parse_answer(nan) == Blind(
        "no value (only NaN, e.g. 0/0 or a histogram with no observations)"
    )
    empty = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
    assert parse_answer(empty) == Blind("empty result (no series)")


def test_plus_inf_held_past_a_max_breaches_and_says_why() -> None:
    """+Inf over the whole window is past a `max` limit: breached, with a reason that reads
    as one (`+Inf`, not `inf`, and why a value is infinite); pending while short."""
    j = judge_check(series([INF] * 6), MAX, 5, 1, NOW)
    assert (j.state, j.value) == (CheckState.BREACHED, INF), j
    assert j.reason == (
        "+Inf above the limit 0.2 for 5s: +Inf..+Inf over 6 samples"
        " (an infinite value, e.g. a division by 0)"
    )
    short = judge_check(series([0.1, 0.1, 0.1, INF, INF, INF]), MAX, 5, 1, NOW)
    assert short.state is CheckState.PENDING, short
    assert short.reason.startswith("+Inf above the limit 0.2 for "), short.reason
    mixed = judge_check(series([0.5, INF, 0.5, INF, 0.5, INF]), MAX, 5, 1, NOW)
    assert mixed.state is CheckState.BREACHED and "0.5..+Inf over 6" in mixed.reason, mixed


def test_infinities_against_a_min_limit() -> None:
    """-Inf is past a `min` limit (breached); +Inf is within it (ok), and never blind."""
    low = judge_check(series([-INF] * 6), Limit(min=10), 5, 1, NOW)
    assert low.state is CheckState.BREACHED and low.reason.startswith("-Inf below the limit 10")
    high = judge_check(series([INF] * 6), Limit(min=10), 5, 1, NOW)
    assert (high.state, high.reason) == (
        CheckState.OK,
        "+Inf, limit 10 (breaches below) (an infinite value, e.g. a division by 0)",
    )
    assert judge_check(series([-INF] * 6), MAX, 5, 1, NOW).state is CheckState.OK


def test_nan_samples_are_no_data_and_several_series_take_an_infinite_worst() -> None:
    """NaN is still no sample (a window of only NaN is blind); of several series at an
    instant +Inf is the worst for a `max`, and -Inf for a `min`."""
    nan = judge_check(series([math.nan] * 6), MAX, 5, 1, NOW)
    assert nan.state is CheckState.BLIND
    merged = merge_series([series([0.1] * 6), series([INF] * 6), series([math.nan] * 6)], MAX)
    assert [v for _, v in merged] == [INF] * 6
    low = Limit(min=10)
    assert [v for _, v in merge_series([series([12.0] * 6), series([-INF] * 6)], low)] == [-INF] * 6


def test_non_finite_values_are_written_as_prometheus_writes_them() -> None:
    """JSON has no infinity: `wire` writes Prometheus's strings, `show_value` reads them
    back (and numbers) as the reasons show them."""
    assert [wire(v) for v in (0.25, None, INF, -INF, math.nan)] == [
        0.25,
        None,
        "+Inf",
        "-Inf",
        "NaN",
    ]
    assert [show_value(v) for v in (0.25, None, "+Inf", "-Inf", INF)] == [
        "0.25",
        "-",
        "+Inf",
        "-Inf",
        "+Inf",
    ]


def test_a_window_of_more_points_than_prometheus_returns_is_refused(tmp_path: Path) -> None:
    """`for: 5h` at `interval: 1s` is 18001 points a range query: Prometheus refuses it, so
    the check was blind on every evaluation (exit 7, "guard is blind" alerts) with its
    "decrease the query resolution" advice. Now `bisector.yaml` is refused: exit 2, one
    `error:` line naming the key; a window within the limit still loads."""
    from bisector.config import parse_config
    from bisector.errors import ConfigError
    from bisector.testing import gitutil
    from tests.conftest import run_cli

    head = "benchmark: {command: [python, b.py]}\nmetrics: {latency_ms: {direction: lower}}\n"
    guard = "guard: {prometheus: 'http://127.0.0.1:9', interval: 1s, "
    with pytest.raises(ConfigError, match=r"checks\[0\] \(p99\) for 18000s at interval 1s"):
        parse_config(head + guard + "checks: [{name: p99, query: up, max: 1, for: 5h}]}\n")
    with pytest.raises(ConfigError, match=r"canary.window 36000s .* raise guard.interval"):
        parse_config(head + guard + "canary: {baseline: a, canary: b, window: 10h}}\n")
    assert parse_config(head + guard + "checks: [{name: p99, query: up, max: 1, for: 3h}]}\n")
    repo = gitutil.make_repo(tmp_path / "repo")
    (repo / "bisector.yaml").write_text(
        head + guard + "checks: [{name: p99, query: up, max: 1, for: 5h}]}\n"
    )
    done = run_cli("guard", "--once", "--repo", str(repo))
    assert done.returncode == 2, done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        line for line in done.stderr.splitlines() if "guard.interval" in line
    ]
    assert "Traceback" not in done.stderr and not (repo / ".bisector").exists()
