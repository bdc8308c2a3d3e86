"""Prometheus metrics of the daemon and its guard, served on 127.0.0.1 only.

Every value is read from the journal at each scrape (cycles, ranges, the run journal's
trials and steps, the control tables, the guard's tables), none is kept in the process:
so after a restart the last cycle's time and outcome, and every count, are what they
were before it, and `bisector pause` or a guard evaluation shows up at once. The list,
with types and labels, is in docs/daemon.md#metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bisector.guard.rules import CheckState
from bisector.store.control import ControlStore
from bisector.store.daemon_state import DaemonState
from bisector.store.guard_state import GuardState

OUTCOMES = (
    "up_to_date",
    "fine",
    "regression",
    "already_handled",
    "paused",
    "busy",
    "no_baseline",
    "abandoned",
    "error",
)
# A check's states, and the canary's verdicts (its row among the checks).
CHECK_STATES = (*(s.value for s in CheckState), "pass", "fail", "inconclusive")
GUARD_OUTCOMES = ("ok", "breached", "inconclusive", "blind", "paused")


def _one_of(name: str, doc: str, label: str, values: tuple[str, ...], now: str | None) -> Any:
    """One series per value, 1 for the current one and 0 for the others."""
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in values:
        family.add_metric([value], 1.0 if value == now else 0.0)
    return family


class JournalCollector(Collector):
    """The daemon's and the guard's metrics, from `<store>/journal.sqlite` per scrape."""

    def __init__(self, store: Path) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        yield from self._daemon()
        yield from self._guard()

    def _daemon(self) -> Iterator[Any]:
        with DaemonState(self.store) as state:
            t = state.totals()
        with ControlStore(self.store / "journal.sqlite") as control:
            paused = control.pause_state().paused
            applied = control.count_rollbacks("applied")
        if t.last_finished is not None:
            yield GaugeMetricFamily(
                "bisector_daemon_last_cycle_timestamp_seconds",
                "End of the last finished cycle (Unix time).",
                value=t.last_finished,
            )
        if t.last_duration is not None:
            yield GaugeMetricFamily(
                "bisector_daemon_last_cycle_duration_seconds",
                "Wall time of the last finished cycle.",
                value=t.last_duration,
            )
        yield _one_of(
            "bisector_daemon_last_cycle_outcome",
            "1 for the outcome of the last finished cycle, 0 for the others.",
            "outcome",
            OUTCOMES,
            t.last_outcome,
        )
        cycles = CounterMetricFamily(
            "bisector_daemon_cycles", "Cycles run, by outcome.", labels=["outcome"]
        )
        for outcome in sorted({*OUTCOMES, *t.outcomes}):
            cycles.add_metric([outcome], float(t.outcomes.get(outcome, 0)))
        yield cycles
        counts = (
            (
                "regressions_found",
                "Cycles that reproduced a regression.",
                t.outcomes.get("regression", 0),
            ),
            ("culprits_found", "Distinct culprit commits named by the daemon's runs.", t.culprits),
            ("rollbacks_applied", "Rollbacks applied to rollback.target (any cause).", applied),
            ("trials", "Benchmark trials journaled by the daemon's runs.", t.trials),
            ("bisection_steps", "Bisection verdicts of the daemon's runs.", t.steps),
        )
        for name, doc, value in counts:
            yield CounterMetricFamily(f"bisector_daemon_{name}", doc, value=float(value))
        yield GaugeMetricFamily(
            "bisector_daemon_paused", "1 while bisector is paused.", value=1.0 if paused else 0.0
        )

    def _guard(self) -> Iterator[Any]:
        with GuardState(self.store) as state:
            meta = state.meta()
            rows = state.checks()
        if meta.last_eval is None and not rows:
            return  # no guard has ever run on this store
        if meta.last_eval is not None:
            yield GaugeMetricFamily(
                "bisector_guard_last_evaluation_timestamp_seconds",
                "Time of the guard's last evaluation (Unix time).",
                value=meta.last_eval,
            )
        yield _one_of(
            "bisector_guard_last_outcome",
            "1 for the outcome of the guard's last evaluation, 0 for the others.",
            "outcome",
            GUARD_OUTCOMES,
            meta.outcome,
        )
        yield GaugeMetricFamily(
            "bisector_guard_blind_evaluations",
            "Blind evaluations in a row (0 once a check is seen again).",
            value=float(meta.blind_streak),
        )
        value = GaugeMetricFamily(
            "bisector_guard_check_value", "Each check's newest value.", labels=["check"]
        )
        state_ = GaugeMetricFamily(
            "bisector_guard_check_state",
            "1 for each check's state, 0 for the others.",
            labels=["check", "state"],
        )
        action = GaugeMetricFamily(
            "bisector_guard_check_last_action_timestamp_seconds",
            "When the guard last acted on a check, labelled with what it did.",
            labels=["check", "action"],
        )
        for row in rows:
            if row.value is not None:
                value.add_metric([row.name], row.value)
            for s in CHECK_STATES:
                state_.add_metric([row.name, s], 1.0 if s == row.state else 0.0)
            if row.last_action is not None and row.action_at is not None:
                action.add_metric([row.name, row.last_action], row.action_at)
        yield from (value, state_, action)


def registry(store: Path) -> CollectorRegistry:
    """A registry of the store's metrics (the endpoint's; tests render it directly)."""
    reg = CollectorRegistry()
    reg.register(JournalCollector(store))
    return reg


def serve(port: int, store: Path) -> Any:
    """Start the HTTP endpoint on 127.0.0.1:`port`; returns the server (call `.shutdown()`)."""
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry(store))
    return server
