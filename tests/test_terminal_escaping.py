"""Repository text reaches the terminal inert: no ESC, BEL or bidi override from a commit
subject, a config key or value, on any human output path (progress, `snapshot diff`, the
rollback plan, the Markdown and HTML reports)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from bisector.cli.progress import ConsoleProgress
from bisector.core.types import Verdict
from bisector.document import RunDocument
from bisector.plumbing.escape import visible
from bisector.ports import ProbeStarted, VerdictReached, Warned
from bisector.report.files import render_markdown
from bisector.report.html import ReportData, render_html
from bisector.testing.gitutil import commit, make_repo
from tests.rollback_support import run_cli
from tests.test_document import found

TITLE = "\x1b]0;PWNED\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


def _assert_inert(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out and RLO not in out, out


def test_visible_writes_controls_and_format_characters_out() -> None:
    """Controls as `\\xNN`, format characters (bidi, zero-width) as `\\uNNNN`; text kept."""
    assert visible(f"a{TITLE}b") == "a\\x1b]0;PWNED\\x07b"
    assert visible(f"x{RLO}y\u2066z\u200e\u200b\ufeff") == "x\\u202ey\\u2066z\\u200e\\u200b\\ufeff"
    assert visible("\U000e0041") == "\\U000e0041"  # a tag character
    assert visible("ünï 中文 👩\u200d💻\ttab\n") == "ünï 中文 👩\u200d💻\ttab\n"


def test_progress_lines_escape_subjects_labels_and_warnings() -> None:
    """`[step k/~n] commit: <sha> <subject>` shows a hostile subject written out."""
    buf = io.StringIO()
    progress = ConsoleProgress(Console(file=buf, width=300))
    progress(ProbeStarted("fine", "a1b2c3d4e5", f"bad {TITLE} x{RLO}y{CLEAR}"))
    progress(VerdictReached("fine", "b" * 40, f"v2{RLO}", Verdict.BAD, 3, 1.0))
    progress(Warned(f"subject {TITLE} quoted"))
    out = buf.getvalue()
    _assert_inert(out)
    step, verdict, warned = out.splitlines()
    assert step.startswith("[step 1] commit: a1b2c3d4e5 bad \\x1b]0;PWNED\\x07 x\\u202ey\\x1b[2J")
    assert verdict.startswith("    v2\\u202e: bad after 3 trials")
    assert warned == "warning: subject \\x1b]0;PWNED\\x07 quoted"


def _hostile_repo(base: Path) -> Path:
    """Tags v1 and v2 whose configs/serving.yaml differ in a hostile key and value (YAML
    refuses a raw ESC, but writes one from `\\e` in double quotes)."""
    repo = make_repo(base / "repo")
    key = '"evil\\e]0;PWNED\\a\\u202ekey"'
    commit(repo, {"configs/serving.yaml": f"{key}: 1\nplain: a\n"}, "v1", "v1")
    value = '"x\\e[2J\\u202ey"'
    commit(repo, {"configs/serving.yaml": f"{key}: 2\nplain: {value}\n"}, "v2", "v2")
    (repo / "bisector.yaml").write_text(
        "benchmark:\n  command: [python, bench.py]\n"
        "metrics:\n  latency_ms: {direction: lower}\n"
        f"rollback:\n  target: {base / 'srv' / 'configs'}\n"
    )
    return repo


@pytest.fixture(scope="module")
def hostile_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _hostile_repo(tmp_path_factory.mktemp("hostile"))


def test_snapshot_diff_escapes_config_keys_and_values(hostile_repo: Path) -> None:
    done = run_cli("snapshot", "diff", "v1", "v2", cwd=hostile_repo, env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    _assert_inert(done.stdout + done.stderr)
    assert "evil\\x1b\\]0;PWNED\\x07\\u202ekey" in done.stderr
    assert "x\\x1b[2J\\u202ey" in done.stderr


def test_the_rollback_plan_escapes_config_keys_and_values(hostile_repo: Path) -> None:
    """The plan a person confirms before a rollback shows hostile text written out."""
    done = run_cli("rollback", "--to", "v2", "--dry-run", cwd=hostile_repo)
    assert done.returncode == 0, done.stderr
    _assert_inert(done.stdout + done.stderr)
    assert "plan (dry run, nothing changed)" in done.stderr
    assert "evil\\x1b\\]0;PWNED\\x07\\u202ekey: (absent) -> 2" in done.stderr
    assert "plain: (absent) -> x\\x1b[2J\\u202ey" in done.stderr


def test_the_markdown_report_writes_a_bidi_override_out_like_the_culprit_line() -> None:
    data = found()
    data["culprit"]["subject"] = f"fix{RLO}txt.exe {TITLE}"
    md = render_markdown(RunDocument.from_json(data))
    _assert_inert(md)
    assert "fix\\\\u202etxt.exe" in md and "\\\\x1b\\]0;PWNED\\\\x07" in md


def test_the_html_report_writes_controls_and_bidi_overrides_out() -> None:
    """The page autoescaped `<`/`&`, but an ESC or a RIGHT-TO-LEFT OVERRIDE in a subject, a
    dependency's name or a config key went in raw (a browser reorders the text; `cat`
    runs the escape sequence); they are written out as in the Markdown report."""
    data = found()
    data["culprit"]["subject"] = f"fix{RLO}txt.exe {TITLE} <b>"
    data["culprit"]["dependencies"][0]["name"] = f"fast{RLO}pad"
    data["culprit"]["config_keys"] = [f"batching{CLEAR}.pad"]
    page = render_html(RunDocument.from_json(data), ReportData())
    _assert_inert(page)
    assert "fix\\u202etxt.exe \\x1b]0;PWNED\\x07 &lt;b&gt;" in page
    assert "fast\\u202epad" in page and "batching\\x1b[2J.pad" in page


def test_the_rollback_plan_keeps_a_file_name_with_a_line_break_on_its_line(
    tmp_path: Path,
) -> None:
    """git allows a line break in a file name: the plan a person confirms must not show it
    as a line of its own (here a fake `- serving.yaml` removal), nor the target's."""
    repo = make_repo(tmp_path / "repo")
    commit(repo, {"configs/serving.yaml": "a: 1\n"}, "v1", "v1")
    forged = "ok\n  - serving.yaml (removed).yaml"
    commit(repo, {f"configs/{forged}": "x: 1\n"}, "v2", "v2")
    target = tmp_path / "srv" / "live\nerror: forged"
    (repo / "bisector.yaml").write_text(
        "benchmark:\n  command: [python, bench.py]\nmetrics:\n  latency_ms: {direction: lower}\n"
    )
    done = run_cli("rollback", "--to", "v2", "--dry-run", "--target", str(target), cwd=repo)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    head = f"plan (dry run, nothing changed): {tmp_path}/srv/live\\nerror: forged -> v2 ("
    assert lines[0].startswith(head), lines
    assert "  + ok\\n  - serving.yaml (removed).yaml" in lines
    assert not any(line.startswith(("  - ", "error:")) for line in lines), lines


def test_a_drifted_file_name_with_a_line_break_stays_on_the_error_line(tmp_path: Path) -> None:
    """A file added to the live folder by hand, named `a\\nhint: all fine.yaml`: the drift
    refusal is still one `error:` line and one `hint:` line."""
    repo = make_repo(tmp_path / "repo")
    commit(repo, {"configs/serving.yaml": "a: 1\n"}, "v1", "v1")
    commit(repo, {"configs/serving.yaml": "a: 2\n"}, "v2", "v2")
    target = tmp_path / "srv" / "configs"
    (repo / "bisector.yaml").write_text(
        "benchmark:\n  command: [python, bench.py]\n"
        f"metrics:\n  latency_ms: {{direction: lower}}\nrollback:\n  target: {target}\n"
    )
    assert run_cli("rollback", "--to", "v1", "--yes", cwd=repo).returncode == 0
    (target / "a\nhint: all fine.yaml").write_text("x: 1\n")
    done = run_cli("rollback", "--to", "v2", "--yes", cwd=repo)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], lines
    assert lines[0].endswith("changed since bisector wrote them: a\\nhint: all fine.yaml")


def test_an_error_quoting_a_file_name_with_a_line_break_is_one_line(tmp_path: Path) -> None:
    """A real file named `b<newline>hint: all fine<ESC>[2J<RLO>.yaml`, malformed, given as
    `--config`: the error names it written out, on one `error:` line, with no forged
    `hint:` line, no escape sequence and no bidi override on stderr."""
    repo = make_repo(tmp_path / "repo")
    commit(repo, {"a.txt": "1\n"}, "first", "v1")
    name = f"b\nhint: all fine{CLEAR}{RLO}.yaml"
    (repo / name).write_text("benchmark: [\n")
    done = run_cli("config", "check", "--config", str(repo / name), cwd=repo)
    assert done.returncode == 2, done.stderr
    _assert_inert(done.stderr)
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and ":2: malformed YAML" in line
    assert "b\\nhint: all fine\\x1b[2J\\u202e.yaml:2:" in line


def test_snapshot_show_and_diff_keep_a_file_name_with_a_line_break_in_its_row(
    tmp_path: Path,
) -> None:
    """`snapshot show` wrote a config file named `ok<newline>fake.yaml` over two lines of its
    table, the second reading as a file of its own; it is one row, written `\\n`. So in
    `snapshot diff`, and for a key with a line break."""
    repo = make_repo(tmp_path / "repo")
    name = "configs/ok\nfake.yaml"
    commit(repo, {"configs/serving.yaml": "a: 1\n", name: '"k\\nforged": 1\n'}, "v1", "v1")
    commit(repo, {name: '"k\\nforged": 2\n'}, "v2", "v2")
    (repo / "bisector.yaml").write_text(
        "benchmark:\n  command: [python, bench.py]\nmetrics:\n  latency_ms: {direction: lower}\n"
    )
    wide = {"COLUMNS": "300"}
    assert run_cli("snapshot", "take", "v2", cwd=repo).returncode == 0
    done = run_cli("snapshot", "show", "v2", cwd=repo, env=wide)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stderr.splitlines() if "yaml" in line]
    assert len(rows) == 2, rows  # the other one and serving.yaml, a row each
    assert rows[0].startswith("│ configs/ok\\nfake.yaml │"), rows
    done = run_cli("snapshot", "diff", "v1", "v2", cwd=repo, env=wide)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stderr.splitlines() if "fake.yaml" in line or "forged" in line]
    assert len(rows) == 1 and "configs/ok\\nfake.yaml │ k\\nforged │ changed" in rows[0], rows
