"""Health check, timeout, failure policy, alerts to a real local webhook, pause and resume."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from bisector.alerts import AlertMessage, send_alert
from bisector.config import Alert
from tests.rollback_support import (
    BAD_LIVE,
    GOOD_LIVE,
    Demo,
    assert_clean,
    make_demo,
    read_live,
    run_cli,
    start_cli,
)


class Hook:
    """A webhook receiver on 127.0.0.1 that records bodies and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict[str, object]] = []
        self.statuses = statuses or []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append(json.loads(body))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/SECRET-TOKEN"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    d = make_demo(tmp_path)
    assert run_cli("rollback", "--to", "v2.4.0", "--yes", cwd=d.repo).returncode == 0
    return d


@pytest.mark.slow
def test_failing_health_check_restores_alerts_once_and_pauses(demo: Demo, hook: Hook) -> None:
    """A failing check puts the previous set back, posts one alert and pauses until resume."""
    demo.write_config(
        health_check=[sys.executable, "-c", "import sys; sys.exit(3)"],
        alerts=[{"webhook": hook.url, "timeout": "2s", "retries": 2}],
    )
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", "--json", cwd=demo.repo)
    assert done.returncode == 5, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "restored" and doc["paused"] and "exit 3" in doc["reason"]
    assert read_live(demo.target) == BAD_LIVE
    assert_clean(demo.target)
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert body["step"] == "health_check" and "exit 3" in str(body["reason"])
    assert "serving.yaml" in body["files"] and "v2.3.1" in str(body["text"])  # type: ignore[operator]
    assert "SECRET-TOKEN" not in done.stderr + done.stdout  # the URL is never logged
    status = run_cli("status", "--json", cwd=demo.repo)
    state = json.loads(status.stdout)
    assert state["paused"] and "failed" in state["reason"] and state["since"]
    assert state["last_rollback"]["status"] == "restored"
    # run from the repository, no --repo: the journal's path is absolute all the same
    assert state["journal"] == str((demo.repo / ".bisector" / "journal.sqlite").resolve())
    assert run_cli("resume", cwd=demo.repo).returncode == 0
    assert not json.loads(run_cli("status", "--json", cwd=demo.repo).stdout)["paused"]
    assert len(hook.bodies) == 1


@pytest.mark.slow
def test_health_check_timeout_kills_process_group(demo: Demo, tmp_path: Path) -> None:
    """A check that hangs is killed with its children at the timeout; the old set returns."""
    pidfile, checkfile = tmp_path / "grandchild.pid", tmp_path / "check.pid"
    script = (
        "import os, subprocess, sys, time, pathlib;"
        f"pathlib.Path({str(checkfile)!r}).write_text(str(os.getpid()));"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"pathlib.Path({str(pidfile)!r}).write_text(str(p.pid)); time.sleep(60)"
    )
    demo.write_config(health_check=[sys.executable, "-c", script], timeout="3s")
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", "--json", cwd=demo.repo)
    assert done.returncode == 5, done.stderr
    assert "timed out" in json.loads(done.stdout)["reason"]
    assert read_live(demo.target) == BAD_LIVE
    # After the timeout, the hung check and the child it started are gone (killed, since
    # each would have slept a minute), the child possibly a zombie awaiting its reaper.
    assert _dead(int(checkfile.read_text()))
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while not _dead(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _dead(grandchild)


@pytest.mark.slow
def test_killed_rollback_leaves_no_health_check_running(demo: Demo, tmp_path: Path) -> None:
    """SIGKILL of `bisector rollback` during a hanging check orphans the check; the next
    command's recovery ends it, and the process it started in a session of its own."""
    checkfile, escapedfile = tmp_path / "check.pid", tmp_path / "escaped.pid"
    script = (
        "import os, subprocess, sys, time, pathlib;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True);"
        f"pathlib.Path({str(escapedfile)!r}).write_text(str(p.pid));"
        f"pathlib.Path({str(checkfile)!r}).write_text(str(os.getpid())); time.sleep(60)"
    )
    demo.write_config(health_check=[sys.executable, "-c", script], timeout="60s")
    rollback = start_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not checkfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = [int(checkfile.read_text()), int(escapedfile.read_text())]
        rollback.kill()
        assert rollback.wait(timeout=10) == -signal.SIGKILL
        assert not any(_dead(pid) for pid in pids)  # orphaned, still running

        state = json.loads(run_cli("status", "--json", cwd=demo.repo).stdout)

        assert "not confirmed" in state["recovered"]
        assert [pid for pid in pids if not _dead(pid)] == []
        assert read_live(demo.target) == GOOD_LIVE
        assert_clean(demo.target)
    finally:
        for pid in pids:
            if not _dead(pid):
                os.kill(pid, signal.SIGKILL)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for its (new) parent to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


@pytest.mark.slow
def test_on_failure_keep_leaves_new_set_unpaused(demo: Demo) -> None:
    """With on_failure: keep, a failing check keeps the new set and does not pause."""
    demo.write_config(health_check=["false"], on_failure="keep")
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", "--json", cwd=demo.repo)
    assert done.returncode == 5 and json.loads(done.stdout)["status"] == "kept"
    assert read_live(demo.target) == GOOD_LIVE
    assert not json.loads(run_cli("status", "--json", cwd=demo.repo).stdout)["paused"]


@pytest.mark.slow
def test_failed_health_check_shows_its_output_and_the_live_set(demo: Demo) -> None:
    """A failing check's last output lines (capped) are shown, and the message names the set live now."""
    script = (
        "import sys\n"
        "for i in range(5000): print(f'noise line {i}')\n"
        "print('probe: connection refused on :8080', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    demo.write_config(health_check=[sys.executable, "-c", script])
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)
    assert done.returncode == 5, done.stderr
    assert "probe: connection refused on :8080" in done.stderr
    assert (
        "noise line 4999" in done.stderr and "noise line 10\n" not in done.stderr
    )  # the tail only
    assert "live now: v2.4.0" in done.stderr
    assert read_live(demo.target) == BAD_LIVE
    assert run_cli("resume", cwd=demo.repo).returncode == 0
    demo.write_config(health_check=[sys.executable, "-c", script], on_failure="keep")
    kept = run_cli("rollback", "--to", "v2.3.1", "--yes", "--json", cwd=demo.repo)
    assert kept.returncode == 5
    doc = json.loads(kept.stdout)
    assert doc["live"] == "v2.3.1" and "connection refused" in doc["health"]["output"]
    assert len(doc["health"]["output"]) <= 2000


def test_exit_5_is_documented() -> None:
    """The README, docs/cli.md and docs/rollback.md document exit 5 (a failed health check)."""
    root = Path(__file__).resolve().parents[1]
    for doc in ("README.md", "docs/cli.md", "docs/rollback.md"):
        text = (root / doc).read_text()
        assert "exit 5" in text.lower() or "| 5 |" in text, doc


def test_passing_health_check_applies(demo: Demo) -> None:
    """A passing check confirms the rollback: new set live, not paused, exit 0."""
    demo.write_config(
        health_check=[
            sys.executable,
            "-c",
            "import os; assert os.environ['BISECTOR_ROLLBACK_TARGET']",
        ]
    )
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)
    assert done.returncode == 0, done.stderr
    assert read_live(demo.target) == GOOD_LIVE


def test_alert_retries_server_errors(hook: Hook) -> None:
    """A 500 answer is retried; the next 200 ends it; the body is Slack-compatible JSON."""
    hook.statuses = [500, 200]
    out = send_alert(
        [Alert(webhook=hook.url, timeout=2.0, retries=3)],
        AlertMessage("rollback failed", "health_check", "exit 1", ("a.yaml",)),
        backoff_s=0.01,
    )
    assert out[0].ok and out[0].attempts == 2 and len(hook.bodies) == 2
    assert hook.bodies[0] == {
        "text": "rollback failed",
        "step": "health_check",
        "files": ["a.yaml"],
        "reason": "exit 1",
    }


def test_alert_refuses_non_http_schemes() -> None:
    """A file:// webhook is never opened (refused on load too: an Alert made without
    validation, as a caller could, is still not sent)."""
    alert = Alert.model_construct(webhook="file:///etc/passwd", timeout=5.0, retries=2)
    out = send_alert([alert], AlertMessage("t", "s", "r"))
    assert not out[0].ok and out[0].attempts == 0


@pytest.mark.slow
def test_pause_and_resume_commands(demo: Demo) -> None:
    """`bisector pause` persists a pause shown by status; `bisector resume` lifts it."""
    assert run_cli("pause", cwd=demo.repo).returncode == 0
    state = json.loads(run_cli("status", "--json", cwd=demo.repo).stdout)
    assert state["paused"] and state["by"] == "user"
    assert state["target"]["live"].startswith("v2.4.0")
    assert run_cli("resume", cwd=demo.repo).returncode == 0
    assert not json.loads(run_cli("status", "--json", cwd=demo.repo).stdout)["paused"]


@pytest.mark.slow
def test_status_recovers_interrupted_rollback(demo: Demo) -> None:
    """`bisector status` finishes an interrupted rollback before it reports."""
    env = {"BISECTOR_FAULT_POINT": "staged"}
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo, env=env)
    assert done.returncode == -9
    state = json.loads(run_cli("status", "--json", cwd=demo.repo).stdout)
    assert "undone" in state["recovered"]
    assert read_live(demo.target) == BAD_LIVE
    assert_clean(demo.target)


def test_failed_health_check_output_is_shown_without_credentials(demo: Demo) -> None:
    """A failing check's output often quotes what it probed: a URL with its password, a
    `curl -v` Authorization header. Neither reaches the screen or the --json document."""
    script = (
        "import sys\n"
        "print('GET https://ops:hunter2-pw@svc.internal/health')\n"
        "print('> Authorization: Bearer eyJhbGciOi.tok3n', file=sys.stderr)\n"
        "print('< HTTP/1.1 503 Service Unavailable')\n"
        "sys.exit(3)\n"
    )
    demo.write_config(health_check=[sys.executable, "-c", script], on_failure="keep")
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)
    assert done.returncode == 5, done.stderr
    assert "503 Service Unavailable" in done.stderr  # the output is still shown
    assert "https://***@svc.internal/health" in done.stderr
    assert "hunter2-pw" not in done.stderr and "tok3n" not in done.stderr
    kept = run_cli("rollback", "--to", "v2.4.0", "--yes", "--json", cwd=demo.repo)
    assert kept.returncode == 5, kept.stderr
    output = json.loads(kept.stdout)["health"]["output"]
    assert "503 Service Unavailable" in output and "Authorization: ***" in output
    assert "hunter2-pw" not in kept.stdout + kept.stderr
    assert "tok3n" not in kept.stdout + kept.stderr
