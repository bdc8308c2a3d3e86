"""One look at Prometheus: every check and the canary judged, nothing acted on yet.

Queries go through the adapter, judgements through the pure `rules` and `canary`
modules; a query that fails makes that check blind and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bisector.config import Config
from bisector.config_guard import Guard, GuardCheck
from bisector.core.types import Direction, MetricRule
from bisector.guard.canary import CanaryVerdict, judge_canary
from bisector.guard.prometheus import Blind, Prometheus
from bisector.guard.rules import CheckState, Limit, judge_check, merge_series, wire
from bisector.log import get_logger

log = get_logger("bisector.guard")

CANARY_NAME = "canary"  # the canary's row among the checks (status, the journal)


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    state: str  # a CheckState value, or a CanaryVerdict value for the canary
    value: float | None
    reason: str
    samples: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state,
            "value": wire(self.value),
            "reason": self.reason,
            "samples": self.samples,
        }


def query_time(now: float) -> float:
    """`now` down to whole milliseconds, the resolution Prometheus keeps a query's times at.

    The adapter writes times with 3 decimals, so an `end` of 12.3456 is asked as 12.346:
    the newest step came back *after* `now` and was not counted, and a held breach waited
    (seconds, until the clock's phase moved) for a window it could not fill.
    """
    return math.floor(now * 1000) / 1000


def evaluate_check(prom: Prometheus, guard: Guard, check: GuardCheck, now: float) -> CheckOutcome:
    now = query_time(now)
    result = prom.range(check.query, now - check.for_, now, guard.interval)
    if isinstance(result, Blind):
        return CheckOutcome(check.name, CheckState.BLIND.value, None, result.reason)
    limit = Limit(max=check.max, min=check.min)
    j = judge_check(
        merge_series([s.samples for s in result.series], limit),
        limit,
        check.for_,
        guard.interval,
        now,
    )
    return CheckOutcome(check.name, j.state.value, j.value, j.reason, j.samples)


def _values(
    prom: Prometheus, query: str, start: float, end: float, step: float
) -> list[float] | Blind:
    result = prom.range(query, start, end, step)
    if isinstance(result, Blind):
        return result
    return [v for s in result.series for _, v in s.samples]


def evaluate_canary(prom: Prometheus, cfg: Config, now: float) -> CheckOutcome | None:
    guard = cfg.guard
    if guard is None or guard.canary is None:
        return None
    canary = guard.canary
    now = query_time(now)
    start = now - canary.window
    base = _values(prom, canary.baseline, start, now, guard.interval)
    can = _values(prom, canary.canary, start, now, guard.interval)
    for side, got in (("baseline", base), ("canary", can)):
        if isinstance(got, Blind):
            return CheckOutcome(CANARY_NAME, CheckState.BLIND.value, None, f"{side}: {got.reason}")
    assert not isinstance(base, Blind) and not isinstance(can, Blind)
    direction = cfg.metrics[canary.metric].direction if canary.metric else Direction.LOWER
    verdict = judge_canary(base, can, MetricRule(direction, canary.threshold))
    return CheckOutcome(
        CANARY_NAME,
        verdict.verdict.value,
        verdict.canary_median,
        verdict.reason,
        min(len(base), len(can)),
    )


def server_now(prom: Prometheus, now: float) -> float:
    """Prometheus's own clock (`time()`), else `now` (then every query is blind anyway).

    The windows are asked in the server's time: with this host's clock ahead, the steps
    past the newest scrape are filled with that sample (Prometheus looks back up to 5
    minutes), so one spike would read as a whole window held past the limit; behind, a
    breach (and its recovery) would be seen late."""
    answer = prom.instant("time()")
    if isinstance(answer, Blind):
        return now
    server = answer.series[0].samples[0][1]
    if abs(server - now) > 1.0:
        log.warning("guard.clock_skew", seconds=round(server - now, 3), using="prometheus")
    return server


def evaluate_all(prom: Prometheus, cfg: Config, now: float) -> list[CheckOutcome]:
    assert cfg.guard is not None
    now = server_now(prom, now)
    outcomes = [evaluate_check(prom, cfg.guard, check, now) for check in cfg.guard.checks]
    canary = evaluate_canary(prom, cfg, now)
    return outcomes if canary is None else [*outcomes, canary]


def breached(outcomes: Sequence[CheckOutcome]) -> list[CheckOutcome]:
    """What calls for `on_breach`: a held breach, or a canary that failed."""
    return [o for o in outcomes if o.state in (CheckState.BREACHED.value, CanaryVerdict.FAIL.value)]


def inconclusive(outcomes: Sequence[CheckOutcome]) -> list[CheckOutcome]:
    return [o for o in outcomes if o.state == CanaryVerdict.INCONCLUSIVE.value]


def blind(outcomes: Sequence[CheckOutcome]) -> list[CheckOutcome]:
    return [o for o in outcomes if o.state == CheckState.BLIND.value]
