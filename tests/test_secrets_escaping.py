"""Commit and config text is printed literally, escaped for Slack and Markdown, and URL credentials never leave (items 15-17)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from bisector.alerts import AlertMessage, send_alert
from bisector.cli._common import stderr_console
from bisector.cli._run import _render_run
from bisector.config import Alert
from bisector.document import RunDocument
from bisector.errors import GitError
from bisector.log import configure, get_logger
from bisector.plumbing.escape import markdown_code, markdown_text, slack_text
from bisector.report.files import render_markdown

from .conftest import run_cli
from .daemon_support import webhook
from .test_document import found, steps_found

TOKEN = "ghp_s3cr3tT0ken"
REMOTE = f"https://bot:{TOKEN}@127.0.0.1:9/org/repo.git"
HOSTILE = "fix [/] race [link=https://evil.example]click[/link] <!channel> <script>alert(1)</script> `x` :fire:"


def _doc(subject: str = HOSTILE, key: str = "batching.[bold]pad`|<b>") -> RunDocument:
    data = found()
    data["culprit"]["subject"] = subject
    data["culprit"]["config_keys"] = [key]
    return RunDocument.from_json(data)


def test_the_console_prints_commit_subjects_with_rich_markup_literally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A culprit subject holding `[/]` and `[link=...]` is printed as written (it raised MarkupError)."""
    _render_run(stderr_console(), _doc())
    err = capsys.readouterr().err
    assert "fix [/] race [link=https://evil.example]click[/link]" in err
    assert "batching.[bold]pad" in err or "culprit:" in err
    assert ":fire:" in err


def test_slack_text_has_no_mentions_or_links_from_commits() -> None:
    """`<!channel>` and `<url|label>` in a commit subject reach Slack as text, not as a ping or a link."""
    body = AlertMessage(
        text=f"culprit: {HOSTILE} <https://evil|docs>", step="bisect", reason="r"
    ).body()
    text = str(body["text"])
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text and "&lt;https://evil|docs&gt;" in text
    assert slack_text("a & b") == "a &amp; b"


def test_the_markdown_report_escapes_subjects_and_keys() -> None:
    """Subject, config key and refs from commits and configs carry no live HTML or Markdown link into the report."""
    md = render_markdown(_doc())
    assert "<script>" not in md and "<!channel>" not in md
    assert "- config key: `` batching.[bold]pad`|<b> ``" in md  # a code span: shown, never run
    assert "&lt;script&gt;" in md
    assert "[link=https://evil.example]" not in md  # escaped: \[link=...\]
    assert markdown_code("pad`x") == "`` pad`x ``"
    assert (
        markdown_text("[docs](https://evil) ![t](https://t)")
        == "\\[docs\\]\\(https://evil\\) \\!\\[t\\]\\(https://t\\)"
    )


def test_the_markdown_report_sends_no_control_characters_or_links_from_any_subject() -> None:
    """`cat report.md` must not run a terminal escape from a commit subject (ESC, CSI),
    and the steps table and the suspect escape their subjects like the culprit's."""
    hostile = "fix\x1b]8;;https://evil\x07[docs](https://evil)\x9b2J\x1b[31mred"
    data = steps_found()
    data["culprits"][0]["subject"] = hostile
    data["culprits"].append(data["culprits"][0] | {"commit": "e" * 40})
    data["suspect"]["subject"] = hostile
    md = render_markdown(RunDocument.from_json(data))
    assert not any(ord(ch) < 0x20 and ch not in "\n\t" or 0x7F <= ord(ch) <= 0x9F for ch in md)
    assert "[docs](https://evil)" not in md and md.count("\\\\x1b\\[31mred") == 3
    assert markdown_code("a\x1bb") == "`a\\x1bb`" and slack_text("\x07") == "\\x07"


def test_url_credentials_are_scrubbed_from_every_log_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A URL with user:token inside any log value (whatever the key) is logged without the token."""
    configure(json_lines=True)
    get_logger("t").error(
        "daemon.fetch", error=f"git fetch {REMOTE} failed", argv=["git", "fetch", REMOTE]
    )
    try:
        raise RuntimeError(f"cannot reach {REMOTE}")
    except RuntimeError:
        get_logger("t").exception("boom")
    err = capsys.readouterr().err
    assert TOKEN not in err and "bot:" not in err
    assert "https://***@127.0.0.1:9/org/repo.git" in err
    configure()


def test_errors_and_alerts_never_carry_url_credentials() -> None:
    """A BisectorError quoting a remote, and an alert's every field, have the credentials scrubbed."""
    exc = GitError(f"git fetch {REMOTE} failed", hint=f"check {REMOTE}")
    assert TOKEN not in exc.message and TOKEN not in str(exc.hint) and TOKEN not in str(exc)
    sent: list[bytes] = []

    def post(url: str, body: bytes, timeout: float) -> int:  # noqa: ARG001 (the sender's signature)
        sent.append(body)
        return 200

    message = AlertMessage(
        text=f"fetch of {REMOTE} failed",
        step="bisect",
        reason=REMOTE,
        files=(REMOTE,),
        extra={"remote": REMOTE},
    )
    send_alert([Alert(webhook="https://hooks.example/T/B/x")], message, post=post)
    assert sent and TOKEN not in sent[0].decode()
    assert json.loads(sent[0])["reason"] == "https://***@127.0.0.1:9/org/repo.git"


def test_daemon_remote_credentials_reach_neither_stderr_nor_the_store(tmp_path: Path) -> None:
    """`daemon --once` with a failing `daemon.remote` holding a token: the token is in no output and no store file."""
    from bisector.testing.sample import SampleSpec, build_sample_repo

    sample = build_sample_repo(tmp_path / "repo", SampleSpec(n_commits=6, culprit=3, noise=0.0))
    cfg = sample.path / "bisector.yaml"
    cfg.write_text(cfg.read_text() + f"daemon: {{remote: '{REMOTE}', metrics_port: 0}}\n")
    done = run_cli("daemon", "--once", "--repo", str(sample.path), timeout=120)
    assert "Traceback" not in done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert (
        "https://***@127.0.0.1:9/org/repo.git" in done.stderr
    )  # the failure is reported, scrubbed
    for path in (sample.path / ".bisector").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_webhook_userinfo_is_sent_as_basic_auth_and_never_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`http://user:token@host/hook`: the body arrives at the real server with
    `Authorization: Basic` (user and password percent-decoded), and neither the alert's
    log lines, its delivery nor its body carry the password."""
    configure(json_lines=True)
    password = "t0k@n:s3cr3t"  # in the URL as t0k%40n%3As3cr3t
    with webhook() as hook:
        url = hook.url.replace("http://", "http://bot%2Bci:t0k%40n%3As3cr3t@")
        message = AlertMessage(text=f"alert via {url}", step="bisect", reason="r")
        deliveries = send_alert([Alert(webhook=url, retries=0)], message)
    assert [(d.ok, d.detail) for d in deliveries] == [(True, "HTTP 200")]
    assert len(hook.bodies) == 1 and hook.bodies[0]["step"] == "bisect"
    expected = base64.b64encode(f"bot+ci:{password}".encode()).decode()
    assert hook.headers[0]["Authorization"] == f"Basic {expected}"
    err = capsys.readouterr().err
    assert "alert.delivery" in err
    for leaked in ("t0k%40n", "s3cr3t", expected):
        assert leaked not in err and leaked not in json.dumps(hook.bodies[0]), leaked
    configure()
