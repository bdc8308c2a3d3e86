"""The daemon's Prometheus endpoint: every value read from the journal, so right after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bisector.store.control import ControlStore
from bisector.store.daemon_state import DaemonState
from tests.conftest import ROOT
from tests.guard_support import free_port
from tests.rollback_support import make_demo


def _samples(
    port: int, daemon: subprocess.Popen[str], timeout: float = 60.0
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The daemon's metrics, once its endpoint answers (its stderr if it exited instead)."""
    deadline = time.monotonic() + timeout
    while True:
        if daemon.poll() is not None:
            raise AssertionError(
                f"the daemon exited {daemon.returncode}: {daemon.communicate()[1]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            if "bisector_daemon_paused" in text:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the daemon's metrics endpoint never answered")
        time.sleep(0.1)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_a_restart_are_the_journal_s(tmp_path: Path) -> None:
    """A fresh daemon process serves the last cycle's time and outcome and every count the journal holds."""
    demo = make_demo(tmp_path)
    port = free_port()
    with (demo.repo / "bisector.yaml").open("a") as f:
        f.write(f"daemon:\n  schedule: '0 2 1 1 *'\n  metrics_port: {port}\n")
    store = demo.repo / ".bisector"
    # What an earlier daemon process left: two cycles, a range with two culprits, a rollback.
    with DaemonState(store) as state:
        first, _ = state.begin_cycle()
        state.finish_cycle(first, "finished", "regression", {})
        state.set_range(
            "a" * 40,
            "b" * 40,
            "done",
            run_id="r1",
            status="found",
            culprit="c" * 40,
            detail={"culprits": ["c" * 40, "d" * 40]},
        )
        second, _ = state.begin_cycle()
        state.finish_cycle(second, "finished", "fine", {})
        last = state.cycles(1)[0]
    with ControlStore(store / "journal.sqlite") as control:
        control.record_rollback(str(demo.target), "v2.3.1", "applied", {})
        control.record_rollback(str(demo.target), "v2.3.1", "restored", {})
    daemon = subprocess.Popen(
        [sys.executable, "-m", "bisector", "daemon", "--repo", str(demo.repo)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = _samples(port, daemon)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=30)
    # SIGTERM may land before the daemon's own handler is in place (its metrics server
    # starts first): the CLI then dies of the signal, as documented. Either way it stopped.
    assert daemon.returncode in (0, -signal.SIGTERM), err
    assert last.finished is not None
    assert got[("bisector_daemon_last_cycle_timestamp_seconds", ())] == last.finished
    assert got[("bisector_daemon_last_cycle_duration_seconds", ())] == last.finished - last.started
    outcome = {
        k[1][0][1]: v for k, v in got.items() if k[0] == "bisector_daemon_last_cycle_outcome"
    }
    assert outcome["fine"] == 1.0 and sum(outcome.values()) == 1.0 and "regression" in outcome
    assert got[("bisector_daemon_cycles_total", (("outcome", "regression"),))] == 1.0
    assert got[("bisector_daemon_cycles_total", (("outcome", "fine"),))] == 1.0
    assert got[("bisector_daemon_cycles_total", (("outcome", "busy"),))] == 0.0
    assert got[("bisector_daemon_regressions_found_total", ())] == 1.0
    assert got[("bisector_daemon_culprits_found_total", ())] == 2.0
    assert got[("bisector_daemon_rollbacks_applied_total", ())] == 1.0  # not the restored one
    assert got[("bisector_daemon_trials_total", ())] == 0.0
    assert got[("bisector_daemon_paused", ())] == 0.0
    assert not any(k[0].startswith("bisector_guard_") for k in got)  # no guard section, no guard
