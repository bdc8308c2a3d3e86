"""Prometheus metrics of the daemon, served on 127.0.0.1 only (never on all interfaces).

One registry per process; the cycle updates it. `paused` is read from the journal on
each scrape, so `bisector pause` shows up at once, not at the next cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bisector.store.control import ControlStore

OUTCOMES = (
    "none",
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

REGISTRY = CollectorRegistry()
LAST_CYCLE = Gauge(
    "bisector_daemon_last_cycle_timestamp_seconds",
    "End of the last cycle (Unix time).",
    registry=REGISTRY,
)
LAST_DURATION = Gauge(
    "bisector_daemon_last_cycle_duration_seconds", "Wall time of the last cycle.", registry=REGISTRY
)
LAST_OUTCOME = Enum(
    "bisector_daemon_last_cycle_outcome",
    "Outcome of the last cycle.",
    states=list(OUTCOMES),
    registry=REGISTRY,
)
CYCLES = Counter(
    "bisector_daemon_cycles", "Cycles run, by outcome.", ["outcome"], registry=REGISTRY
)
REGRESSIONS = Counter(
    "bisector_daemon_regressions_found", "Regressions reproduced and bisected.", registry=REGISTRY
)
STEPS = Counter(
    "bisector_daemon_bisection_steps",
    "Bisection steps (verdicts) taken by the daemon.",
    registry=REGISTRY,
)
_lock = threading.Lock()
_paused: Collector | None = None


def observe_cycle(outcome: str, finished: float, duration_s: float) -> None:
    with _lock:
        LAST_CYCLE.set(finished)
        LAST_DURATION.set(duration_s)
        LAST_OUTCOME.state(outcome if outcome in OUTCOMES else "error")
        CYCLES.labels(outcome=outcome).inc()
        if outcome == "regression":
            REGRESSIONS.inc()


class PausedCollector(Collector):
    """`bisector_daemon_paused`: 1 while paused, read from the control journal per scrape."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal

    def collect(self) -> Iterator[Any]:

        with ControlStore(self.journal) as control:
            paused = control.pause_state().paused
        yield GaugeMetricFamily(
            "bisector_daemon_paused", "1 while bisector is paused.", value=1.0 if paused else 0.0
        )


def serve(port: int, journal: Path) -> Any:
    """Start the HTTP endpoint on 127.0.0.1:`port`; returns the server (call `.shutdown()`)."""
    global _paused
    if _paused is not None:
        REGISTRY.unregister(_paused)
    _paused = PausedCollector(journal)
    REGISTRY.register(_paused)
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
    return server
