"""What the daemon's alerts say: the finding (keys and packages with their values, every
culprit), what the policy did, and the report's link under `daemon.report_url`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bisector.config import load_config
from bisector.core.types import Status
from bisector.daemon.alert_text import action_text, found_text, report_link
from bisector.daemon.cycle import execute
from bisector.document import RunDocument
from bisector.document.findings import Culprit, Dependency, Isolation
from bisector.errors import ConfigError
from bisector.store.daemon_state import DaemonState
from bisector.testing import gitutil
from bisector.testing.sample import SampleRepo, SampleSpec, build_sample_repo
from tests.daemon_support import RELEASES, Webhook, publish_release, released_repo, webhook


@pytest.mark.slow
def test_alert_names_the_key_and_its_values_the_rollback_and_links_the_report(
    tmp_path: Path,
) -> None:
    """A config-key culprit: the webhook gets one alert with key old → new, "rolled back to v2.3.1", the report URL."""
    with webhook() as hook:
        extra = (
            "daemon:\n  schedule: '0 2 1 1 *'\n  metrics_port: 0\n  policy: rollback\n"
            "  report_url: https://ci.example.org/bisector\n"
            f"  alerts: [{{webhook: {hook.url!r}, retries: 0}}]\n"
        )
        spec = SampleSpec(
            n_commits=10,
            culprit=8,
            kind="config",
            repeats=(4, 8),
            releases=RELEASES,
            extra_yaml=extra,
        )
        repo = build_sample_repo(tmp_path / "repo", spec)
        result = execute(repo.path, None)
    assert result.outcome == "regression" and result.detail["status"] == "found", result
    assert len(hook.bodies) == 1, hook.bodies
    body = hook.bodies[0]
    run_id = str(result.detail["run_id"])
    text = str(body["text"])
    assert body["step"] == "bisect" and body["reason"] == "found"
    assert repo.culprit[:10] in text
    assert "config key configs/serving.yaml:batching.pad_to_target false → true" in text
    assert "rolled back to v2.3.1 (applied)" in text
    link = f"https://ci.example.org/bisector/{run_id}/report.html"
    assert text.endswith(f"report {link}") and body["report"] == link
    assert body["rolled_back_to"] == "v2.3.1" and body["rollback"] == "applied"
    assert str(tmp_path) not in text  # the link replaces the local path
    assert (repo.path / ".bisector" / "reports" / run_id / "report.html").is_file()


def _doc(culprits: tuple[Culprit, ...], changes: tuple[dict[str, object], ...] = ()) -> RunDocument:
    return RunDocument(
        status=Status.FOUND,
        metric="latency_ms",
        good=None,
        bad=None,
        culprit=culprits[0],
        culprits=culprits if len(culprits) > 1 else None,
        isolation=Isolation(kind="mixed", changes=changes),
    )


def _culprit(sha: str, subject: str, **kw: object) -> Culprit:
    return Culprit(sha * 40, subject, str(kw.pop("kind", "code")), 0.3, 0.99, True, **kw)  # type: ignore[arg-type]


def test_found_text_names_each_culprit_package_first_bad_version_and_key_values() -> None:
    """Two culprits: each is named with its share, its package (old → new, first bad version) and its key (old → new)."""
    dep = Dependency("fastpad", "1.0.0", "1.3.0", first_bad_version="1.2.0")
    first = _culprit("a", "Upgrade fastpad", kind="dependency", dependencies=(dep,), share=0.6)
    second = _culprit(
        "b", "Tune batching", kind="config", config_keys=("batching.timeout_ms",), share=0.4
    )
    change = {
        "file": "configs/serving.yaml",
        "key": "batching.timeout_ms",
        "change": "changed",
        "from": 5,
        "to": 50,
    }
    text = found_text(_doc((first, second), (change,)))
    assert text == (
        "culprit aaaaaaaaaa 'Upgrade fastpad' (60% of it): package fastpad 1.0.0 → 1.3.0 "
        "(first bad version 1.2.0); culprit bbbbbbbbbb 'Tune batching' (40% of it): "
        "config key configs/serving.yaml:batching.timeout_ms 5 → 50"
    )


def test_action_text_says_what_the_policy_did_and_why_not() -> None:
    """Each policy result reads as what happened: rolled back, not rolled back and why, paused."""
    assert action_text("report", "v1", None) == "not rolled back: daemon.policy is report"
    assert (
        action_text("rollback", "v1", {"status": "applied", "to": "v1"})
        == "rolled back to v1 (applied)"
    )
    assert action_text(
        "rollback", "v1", {"status": "not_rolled_back", "reason": "unverified"}
    ).startswith("not rolled back: unverified")
    assert (
        action_text("rollback", "v1", {"status": "refused", "reason": "bisector is paused"})
        == "not rolled back to v1: bisector is paused"
    )
    restored = action_text("rollback", "v1", {"status": "restored", "paused": True})
    assert "health check failed" in restored and restored.endswith("paused until `bisector resume`")
    assert report_link("/r/x/report.html", "x", None) == "/r/x/report.html"
    assert report_link("/r/x/report.html", "x", "https://ci/b/") == "https://ci/b/x/report.html"


def test_report_url_must_be_http(tmp_path: Path) -> None:
    """`daemon.report_url` that is not an http(s) URL is a config error naming the key."""
    (tmp_path / "bisector.yaml").write_text(
        "benchmark: {command: [python, b.py]}\nmetrics: {ms: {direction: lower}}\n"
        "daemon: {report_url: 'file:///srv/reports'}\n"
    )
    with pytest.raises(ConfigError, match="report_url"):
        load_config(tmp_path)


def test_an_alert_no_webhook_took_is_sent_again_by_the_next_cycle(tmp_path: Path) -> None:
    """The webhook is down while the regression is alerted (nothing listens): the range
    stays `acted` (it was `done`, the alert lost but for a log line), and the next cycle,
    the webhook back, sends it once, as `already_handled` (not a second regression)."""
    from tests.guard_support import free_port

    down = f"http://127.0.0.1:{free_port()}/hooks/T000/SECRET"
    repo = released_repo(tmp_path / "repo", webhook_url=down)
    first = execute(repo.path, None)
    assert (first.outcome, first.detail["alert"]) == ("regression", "undelivered"), first
    with DaemonState(repo.path / ".bisector") as state:
        assert [r.phase for r in state.ranges()] == ["acted"]
    with webhook() as hook:
        config = repo.path / "bisector.yaml"
        config.write_text(config.read_text().replace(down, hook.url))
        second = execute(repo.path, None)
        assert (second.outcome, second.detail["alert"]) == ("already_handled", "sent"), second
        assert len(hook.bodies) == 1 and hook.bodies[0]["culprit"] == repo.culprit
        assert execute(repo.path, None).outcome == "already_handled"
        assert len(hook.bodies) == 1
    with DaemonState(repo.path / ".bisector") as state:
        assert [r.phase for r in state.ranges()] == ["done"]
        assert [c.outcome for c in state.cycles()].count("regression") == 1


def test_a_paused_daemon_still_sends_the_alert_no_webhook_took(tmp_path: Path) -> None:
    """The policy's rollback fails its health check (the previous set back, bisector
    paused) while the webhook answers 500: the range's alert waits. The cycles after,
    paused, measure and roll back nothing but send it again (it sat until `resume`):
    refused again, then taken once, then never again."""
    from bisector.store.control import ControlStore, journal_path

    with webhook() as hook:
        hook.refuse = True
        repo = released_repo(tmp_path / "repo", webhook_url=hook.url, policy="rollback")
        failing = json.dumps([sys.executable, "-c", "import sys; sys.exit(3)"])
        config = repo.path / "bisector.yaml"
        config.write_text(
            config.read_text().replace("rollback:\n", f"rollback:\n  health_check: {failing}\n", 1)
        )
        first = execute(repo.path, None)
        assert (first.outcome, first.detail["alert"]) == ("regression", "undelivered"), first
        assert (
            first.detail["rollback"]["status"] == "restored" and first.detail["rollback"]["paused"]
        )
        run_id = first.detail["run_id"]
        with DaemonState(repo.path / ".bisector") as state:
            trials = state.totals().trials
        still = execute(repo.path, None)
        assert (still.outcome, still.detail["alerts"]) == ("paused", {run_id: "undelivered"})
        hook.refuse = False
        sent = execute(repo.path, None)
        assert (sent.outcome, sent.detail["alerts"]) == ("paused", {run_id: "sent"}), sent
        assert [b["step"] for b in hook.refused] == ["health_check", "bisect", "bisect"]
        assert len(hook.bodies) == 1 and hook.bodies[0]["culprit"] == repo.culprit
        text = str(hook.bodies[0]["text"])
        assert "the health check failed" in text and "paused until `bisector resume`" in text
        again = execute(repo.path, None)
        assert again.outcome == "paused" and "alerts" not in again.detail and len(hook.bodies) == 1
    with DaemonState(repo.path / ".bisector") as state:
        assert [r.phase for r in state.ranges()] == ["done"]
        assert state.totals().trials == trials  # nothing measured while paused
    with ControlStore(journal_path(repo.path, ".bisector")) as control:
        assert control.pause_state().paused
        assert [r.status for r in control.rollbacks()] == ["restored"]  # nor rolled back


def _owed_then_moved_on(path: Path, hook: Webhook) -> tuple[SampleRepo, str]:
    """The webhook refuses the regression's alert (range v2.3.1..v2.4.0 left `acted`),
    then the branch head moves on past v2.4.0 (a fine commit): the next cycle's range is
    v2.3.1..head, whose bisection names the same culprit. The repo, the owed run id."""
    hook.refuse = True
    repo = released_repo(path, webhook_url=hook.url)
    first = execute(repo.path, None)
    assert (first.outcome, first.detail["alert"]) == ("regression", "undelivered"), first
    hook.refuse = False
    gitutil.commit(repo.path, {"NOTES.md": "release notes\n"}, "Add release notes")
    return repo, str(first.detail["run_id"])


def test_an_owed_alert_is_sent_first_when_the_head_moved_on(tmp_path: Path) -> None:
    """Before: an unpaused cycle sent again only its own range's alert, so once the head
    moved on, the older range's alert was never sent (the newer range's was, as if new).
    Now the cycle sends what is owed first; the newer range naming the same culprit is
    then a duplicate: the on-call gets the culprit once, in the older range's alert."""
    with webhook() as hook:
        repo, older = _owed_then_moved_on(tmp_path / "repo", hook)
        second = execute(repo.path, None)
        assert [(b["run_id"], b["culprit"]) for b in hook.bodies] == [(older, repo.culprit)]
        assert second.detail["alerts"] == {older: "sent"}, second
        assert second.outcome == "regression" and second.detail["run_id"] != older
        assert second.detail["culprit"] == repo.culprit
        third = execute(repo.path, None)
        assert third.outcome == "already_handled" and "alerts" not in third.detail
        assert len(hook.bodies) == 1
    with DaemonState(repo.path / ".bisector") as state:
        assert [r.phase for r in state.ranges()] == ["done", "done"]


def test_an_owed_alert_is_superseded_by_a_newer_one_naming_the_same_culprit(
    tmp_path: Path,
) -> None:
    """The owed alert is refused again at the cycle's start, the newer range's alert (the
    same culprit) is taken: the older one is marked superseded and never sent after it."""
    with webhook() as hook:
        repo, older = _owed_then_moved_on(tmp_path / "repo", hook)
        hook.refuse_next = 1
        second = execute(repo.path, None)
        newer = second.detail["run_id"]
        assert [(b["run_id"], b["culprit"]) for b in hook.bodies] == [(newer, repo.culprit)]
        assert [b["run_id"] for b in hook.refused] == [older, older]
        assert second.detail["alerts"] == {older: "undelivered"}, second
        assert (second.outcome, second.detail["alert"]) == ("regression", "sent")
        third = execute(repo.path, None)
        assert third.outcome == "already_handled" and "alerts" not in third.detail
        assert len(hook.bodies) == 1
    with DaemonState(repo.path / ".bisector") as state:
        stale = next(r for r in state.ranges() if r.run_id == older)
        assert stale.phase == "done"
        assert (stale.detail["alert"], stale.detail["superseded_by"]) == ("superseded", newer)


def test_the_bisection_after_a_guard_rollback_alerts_again_until_delivered(
    tmp_path: Path,
) -> None:
    """After a guard rollback the daemon bisects (rolled back to)..(live) and alerts. With
    the webhook down the request stayed cleared and the range `done`: the culprit was never
    alerted. Now the request and the `acted` range stay, and the next tick (the webhook
    back) sends the alert once, without bisecting again."""
    from bisector.daemon.after_rollback import run_after_rollback
    from bisector.store.guard_state import GuardState
    from tests.guard_support import free_port

    down = f"http://127.0.0.1:{free_port()}/hooks/T000/SECRET"
    repo = released_repo(tmp_path / "repo", webhook_url=down)
    store = repo.path / ".bisector"
    store.mkdir(exist_ok=True)
    with GuardState(store) as guard:
        guard.request_bisect("v2.3.1", "v2.4.0")
    first = run_after_rollback(repo.path, None)
    assert first is not None and first.outcome == "regression", first
    assert first.detail["alert"] == "undelivered"
    with GuardState(store) as guard:
        assert guard.bisect_request() is not None  # kept: the alert is owed
    with DaemonState(store) as state:
        assert [r.phase for r in state.ranges()] == ["acted"]
    assert _pending_after_rollback(repo.path) == "alert"  # the range owes it, not bisected
    with webhook() as hook:
        config = repo.path / "bisector.yaml"
        config.write_text(config.read_text().replace(down, hook.url))
        second = run_after_rollback(repo.path, None)
        assert second is not None and second.detail["alert"] == "sent", second
        assert len(hook.bodies) == 1 and hook.bodies[0]["culprit"] == repo.culprit
        assert run_after_rollback(repo.path, None) is None  # the request is gone
    with DaemonState(store) as state:
        assert [r.phase for r in state.ranges()] == ["done"]


def _pending_after_rollback(repo: Path) -> str:
    """What `bisector status` says the request after a guard rollback waits for (`--json`
    `pending`), checked against its human line."""
    from bisector.daemon.status import guard_lines, guard_status

    g = guard_status(repo, load_config(repo))
    pending = str(g["bisect_after_rollback"]["pending"])
    line = next(x for x in guard_lines(g) if "after the rollback" in x)
    what = {"alert": "alert of the bisection after the rollback waiting for a webhook: "}
    assert line.startswith("  " + what.get(pending, "to bisect after the rollback: ")), line
    return pending


def _after_rollback_refused(path: Path, hook: Webhook, good: str, live: str | None) -> SampleRepo:
    """A guard rollback to `good` asked for a bisection; the webhook refuses its alert."""
    from bisector.store.guard_state import GuardState

    hook.refuse = True
    repo = released_repo(path, webhook_url=hook.url)
    with GuardState(repo.path / ".bisector") as guard:
        guard.request_bisect(good, live)
    return repo


def test_the_alert_that_the_bisection_after_a_guard_rollback_failed_waits_until_delivered(
    tmp_path: Path,
) -> None:
    """The bisection after a guard rollback cannot be made (nothing released after the
    ref rolled back to): its error alert was sent once and the request cleared, taken or
    not. Now the request keeps the alert, and the next tick sends it, without trying the
    bisection again (a release landed since would let it run: it is not run)."""
    from bisector.daemon.after_rollback import run_after_rollback
    from bisector.store.guard_state import GuardState

    with webhook() as hook:
        repo = _after_rollback_refused(tmp_path / "repo", hook, "v2.4.0", None)
        assert _pending_after_rollback(repo.path) == "bisection"
        first = run_after_rollback(repo.path, None)
        assert _pending_after_rollback(repo.path) == "alert"  # was "to bisect after the rollback"
        with GuardState(repo.path / ".bisector") as guard:
            kept = guard.bisect_request()
        assert kept is not None and kept.alert is not None, first  # the alert is owed
        assert first is not None and (first.outcome, first.detail["alert"]) == (
            "error",
            "undelivered",
        )
        assert "no release after" in first.detail["error"]
        gitutil.commit(repo.path, {"NOTES.md": "notes\n"}, "Add release notes", tag="v2.5.0")
        hook.refuse = False
        second = run_after_rollback(repo.path, None)
        assert second is not None and (second.outcome, second.detail) == (
            "already_handled",
            {"alert": "sent"},
        )
        assert hook.bodies == hook.refused and hook.bodies[0]["step"] == "bisect"
        assert "could not be made: no release after" in str(hook.bodies[0]["text"])
        assert run_after_rollback(repo.path, None) is None  # the request is gone
    with DaemonState(repo.path / ".bisector") as state:
        assert state.ranges() == [] and state.totals().trials == 0  # nothing run again


def test_the_not_reproduced_alert_after_a_guard_rollback_waits_until_delivered(
    tmp_path: Path,
) -> None:
    """The bisection after a guard rollback reproduces no regression (v2.3.0..v2.3.1 are
    both fine): its alert, refused, was lost (the request cleared, the range `done`). Now
    the request keeps it and the next tick sends it, measuring nothing again."""
    from bisector.daemon.after_rollback import run_after_rollback
    from bisector.store.guard_state import GuardState

    with webhook() as hook:
        repo = _after_rollback_refused(tmp_path / "repo", hook, "v2.3.0", "v2.3.1")
        first = run_after_rollback(repo.path, None)
        assert _pending_after_rollback(repo.path) == "alert"
        with GuardState(repo.path / ".bisector") as guard:
            kept = guard.bisect_request()
        assert kept is not None and kept.alert is not None, first  # the alert is owed
        assert first is not None and (first.outcome, first.detail["alert"]) == (
            "fine",
            "undelivered",
        )
        with DaemonState(repo.path / ".bisector") as state:
            trials = state.totals().trials
        hook.refuse = False
        second = run_after_rollback(repo.path, None)
        assert second is not None and second.detail == {"alert": "sent"}, second
        assert hook.bodies == hook.refused and hook.bodies[0]["reason"] == "not_reproduced"
        assert run_after_rollback(repo.path, None) is None
    with DaemonState(repo.path / ".bisector") as state:
        assert state.totals().trials == trials


# Runs the bisection after the guard's rollback of the repo argv[1]; its alert seam (the
# first thing called once the not-reproduced range is `done`) SIGKILLs the process.
_KILLED_AT_THE_ALERT = """
import os, signal, sys
from pathlib import Path
from bisector.daemon.after_rollback import run_after_rollback
from bisector.daemon.cycle import Seams

def killed(alerts, message):
    os.kill(os.getpid(), signal.SIGKILL)

run_after_rollback(Path(sys.argv[1]), None, Seams(alert=killed))
"""


def test_the_not_reproduced_alert_after_a_guard_rollback_survives_a_kill_before_it_is_sent(
    tmp_path: Path,
) -> None:
    """The bisection after a guard rollback reproduces nothing; the process is SIGKILLed
    once the range is `done`, before the alert goes out. The restart found the range
    handled and dropped the request: the alert was never sent. Now the request holds the
    alert from before the range was marked `done`, and the restart sends it, measuring
    nothing again."""
    import os
    import signal
    import subprocess

    from bisector.daemon.after_rollback import run_after_rollback
    from bisector.store.guard_state import GuardState
    from tests.conftest import ROOT

    with webhook() as hook:
        repo = _after_rollback_refused(tmp_path / "repo", hook, "v2.3.0", "v2.3.1")
        hook.refuse = False
        child = subprocess.run(
            [sys.executable, "-c", _KILLED_AT_THE_ALERT, str(repo.path)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
        store = repo.path / ".bisector"
        with DaemonState(store) as state:
            [fine] = [r.status for r in state.ranges()]
            trials = state.totals().trials
        assert fine == "not_reproduced" and not hook.bodies
        with GuardState(store) as guard:
            kept = guard.bisect_request()
        assert kept is not None and kept.alert is not None  # owed across the kill
        again = run_after_rollback(repo.path, None)
        assert again is not None and again.detail == {"alert": "sent"}, again
        assert len(hook.bodies) == 1 and hook.bodies[0]["reason"] == "not_reproduced"
        assert run_after_rollback(repo.path, None) is None
    with DaemonState(store) as state:
        assert state.totals().trials == trials


def test_a_request_journaled_by_the_previous_version_is_read_and_keeps_its_alert(
    tmp_path: Path,
) -> None:
    """A journal whose `guard_bisect` has no `alert` column (the previous version): its
    request is read as it was (read-only too, as `bisector status` opens it), and once
    opened for writing the column is added and the request can keep its alert."""
    import sqlite3

    from bisector.store.guard_state import BisectRequest, GuardState

    store = tmp_path / "store"
    store.mkdir()
    db = sqlite3.connect(store / "journal.sqlite")
    db.execute(
        "CREATE TABLE guard_bisect (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " good TEXT NOT NULL, live TEXT, requested REAL NOT NULL)"
    )
    db.execute("INSERT INTO guard_bisect VALUES (1, 'v2.3.1', 'v2.4.0', 5.0)")
    db.commit()
    db.close()
    with GuardState(store, read_only=True) as old:
        assert old.bisect_request() == BisectRequest("v2.3.1", "v2.4.0", 5.0)
    message = {"text": "t", "step": "bisect", "reason": "r", "files": [], "extra": {}}
    with GuardState(store) as guard:
        guard.keep_bisect_alert(5.0, message)
        assert guard.bisect_request() == BisectRequest("v2.3.1", "v2.4.0", 5.0, message)


def test_a_range_naming_a_culprit_not_alerted_yet_is_alerted_beside_an_alerted_one(
    tmp_path: Path,
) -> None:
    """v2.3.2 brings one regression step (A), alerted; v2.4.0 a second (B) on top. The
    range v2.3.1..v2.4.0 names [A, B]: its alert was suppressed as a duplicate (only its
    first culprit, A, was compared), so the on-call never heard of B. Now it is sent,
    saying B is new; and a range naming only B after that is a duplicate."""
    with webhook() as hook:
        repo = released_repo(tmp_path / "repo", webhook_url=hook.url, second_step=10)
        first_step, second_step = repo.culprit, repo.second_culprit
        v240 = repo.tags["v2.4.0"]
        between = repo.commits[repo.commits.index(first_step) + 1]
        gitutil.git(repo.path, "tag", "-d", "v2.4.0")
        publish_release(repo, between, "v2.3.2")
        first = execute(repo.path, None)
        assert (first.outcome, first.detail["culprit"]) == ("regression", first_step), first
        assert [b["culprits"] for b in hook.bodies] == [first_step]
        publish_release(repo, v240)
        second = execute(repo.path, None)
        assert (second.outcome, second.detail["alert"]) == ("regression", "sent"), second
        assert len(hook.bodies) == 2, hook.bodies
        body = hook.bodies[1]
        assert body["culprits"] == f"{first_step},{second_step}", body
        assert (body["new_culprits"], body["already_alerted"]) == (second_step, first_step)
        assert (
            f"new since an earlier alert: {second_step[:10]} "
            f"({first_step[:10]} alerted before)" in str(body["text"])
        )
        assert execute(repo.path, None).outcome == "already_handled"
        with DaemonState(repo.path / ".bisector") as state:
            state.set_last_good(between, "v2.3.2")  # as if v2.3.2 had measured fine
        third = execute(repo.path, None)
        assert (third.outcome, third.detail["culprit"]) == ("regression", second_step), third
        assert len(hook.bodies) == 2  # B was told with A: a duplicate
    with DaemonState(repo.path / ".bisector") as state:
        assert [r.phase for r in state.ranges()] == ["done", "done", "done"]


def test_an_owed_alert_is_superseded_only_by_one_naming_all_its_culprits(tmp_path: Path) -> None:
    """Owed alerts of [A] and of [A, B], then a newer range's alert naming [A] delivered:
    only [A]'s is superseded ([A, B]'s still has B to tell); a range journaled without its
    `culprits` (an earlier version) names its `culprit` column."""
    a, b = "a" * 40, "b" * 40
    with DaemonState(tmp_path) as state:
        state.set_range("g1", "h1", "acted", run_id="r1", culprit=a, detail={"culprits": [a]})
        state.set_range("g2", "h2", "acted", run_id="r2", culprit=a, detail={"culprits": [a, b]})
        state.set_range("g3", "h3", "acted", run_id="r3", culprit=a, detail={})
        state.set_range("g4", "h4", "done", run_id="r4", culprit=a, detail={"culprits": [a]})
        assert state.supersede_owed((a,), "g4", "h4", "r4") == ["r1", "r3"]
        assert state.alerted_culprits() == {a}
        assert [r.run_id for r in state.owed_alerts()] == ["r2"]
