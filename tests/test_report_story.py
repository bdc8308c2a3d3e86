"""Reports that tell what the run knows: terminal lines, progress, the HTML's sections and badge."""

from __future__ import annotations

import copy
import io
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bisector.cli._lines import WholeLines
from bisector.cli._run import _render_run
from bisector.cli.progress import ConsoleProgress
from bisector.core.types import Verdict
from bisector.document import RunDocument
from bisector.ports import ProbeStarted, RangeNarrowed, VerdictReached
from bisector.report.files import render_markdown
from bisector.report.html import ReportData, badge, render_html
from bisector.report.wording import percent
from tests.test_document import CULPRIT, PARENT, found

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KEY_CHANGE = {
    "file": "configs/serving.yaml",
    "key": "batching.pad_to_target",
    "change": "changed",
    "from": False,
    "to": True,
    "kind": "config",
}


def _documented() -> dict[str, Any]:
    """The stored dependency culprit of test_document, with a config key change as well."""
    data = found()
    data["isolation"]["changes"].append(KEY_CHANGE)
    data["isolation"]["culprits"].append(KEY_CHANGE)
    data["culprit"] |= {"evidence": data["details"]["reproduction"], "trials": 6}
    data["culprits"] = [data["culprit"]]
    data["suspect"] = None
    data["reused"] = {"trials": 0, "builder": "venv", "runs": {}}
    return data


def _printed(doc: RunDocument) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=300, markup=False, highlight=False, emoji=False)
    _render_run(console, doc)
    return buf.getvalue()


def test_terminal_names_the_first_bad_version_and_each_keys_old_and_new_value() -> None:
    """The run's summary prints a package's first bad version, each key's old → new value and the reuse."""
    out = _printed(RunDocument.from_json(_documented()))
    assert "dependency: fastpad 1.0.0 -> 1.3.0, first bad version 1.2.0" in out
    assert "config key: batching.pad_to_target: false -> true" in out
    assert "reused no trials from the journal (builder venv)" in out


def test_a_huge_relative_effect_is_written_in_powers_of_ten_everywhere() -> None:
    """A good side measuring near 0 made a hundred-digit percentage (`effect +99537...0.0%`)
    on the terminal, the Markdown and the HTML page; they share one format (`percent`)."""
    data = copy.deepcopy(_documented())  # its parts are shared with other tests
    data["culprit"]["effect"] = 9.953711e96
    data["culprit"]["evidence"] = dict(data["culprit"]["evidence"], relative_effect=9.953711e96)
    data["details"]["reproduction"]["relative_effect"] = -2e4
    doc = RunDocument.from_json(data)
    pages = {
        "terminal": _printed(doc),
        "markdown": render_markdown(doc),
        "html": render_html(doc, ReportData()),
    }
    for name, page in pages.items():
        assert "+1.0e+99%" in page, name
        assert not re.search(r"\d{12}", page.replace(CULPRIT, "").replace(PARENT, "")), name
    assert "(-2000000.0%)" not in pages["markdown"] and "(-2.0e+06%)" in pages["markdown"]
    assert percent(0.123) == "+12.3%" and percent(-999.9) == "-99990.0%"
    assert percent(1000) == "+1.0e+05%" and percent(12.0, signed=False, digits=0) == "1200%"


def test_progress_never_passes_its_estimate_nor_says_eta_0s() -> None:
    """Past the estimate a step that brings none of its own is `[step k]`, never
    `[step 8/~5]`; a new range is estimated again; no `ETA 0s` is printed."""
    buf = io.StringIO()
    progress = ConsoleProgress(Console(file=buf, width=300))
    progress(RangeNarrowed(8, "commits"))  # about 4 steps
    for i in range(9):  # instant steps: reused trials
        progress(ProbeStarted("fine", f"{i:010d}", "a subject"))
    lines = buf.getvalue().splitlines()
    assert lines[0] == "bisecting 6 commits between known ends"  # 8 with the two ends
    steps = [re.match(r"\[step (\d+)(?:/~(\d+))?\]", line) for line in lines[1:]]
    assert all(m is not None for m in steps), lines
    shown = [(int(m[1]), m[2]) for m in steps if m is not None]
    assert [k for k, _ in shown] == list(range(1, 10))
    assert all(n is None or k <= int(n) for k, n in shown), lines
    assert any(n is None for _, n in shown) and any(n is not None for _, n in shown)
    assert not any("ETA 0s" in line for line in lines), lines
    progress(RangeNarrowed(8, "commits"))  # a part of a split range: about 4 steps from step 9
    progress(ProbeStarted("fine", "0000000010", "a subject"))
    assert buf.getvalue().splitlines()[-1].startswith("[step 10/~13] commit:")


def test_a_step_line_cuts_a_long_subject_visibly() -> None:
    """A step line cut an isolation state at 60 characters mid-word (`..._ms, config`),
    which read as a whole label; a longer subject now ends in `…`, a short one is whole."""
    buf = io.StringIO()
    progress = ConsoleProgress(Console(file=buf, width=300))
    state = "good side + configs/serving.yaml:batching.timeout_ms, configs/serving.yaml:x"
    progress(ProbeStarted("isolate-ddmin", "ed126f8088", state))
    progress(ProbeStarted("fine", "a1b2c3d4e5", "a subject"))
    cut, whole = buf.getvalue().splitlines()
    assert cut == f"[step 1] some changes: ed126f8088 {state[:59]}…", cut
    assert whole == "[step 2] commit: a1b2c3d4e5 a subject", whole


def test_progress_takes_the_searchs_estimate_made_again_each_step() -> None:
    """The posterior search re-measures a commit between the ends (its processes teach the
    posterior little): its estimate of the steps left grows as that happens, so every step
    of it shows `[step k/~n]` with k <= n, also past the first estimate (which printed
    `[step 9/~4]`, then only `[step 9]`)."""
    from bisector.core.hunt import hunt
    from tests.test_hunt import BUDGET, COMMITS, METRIC, RULE, FakeProbe, steps_at

    buf = io.StringIO()
    progress = ConsoleProgress(Console(file=buf, width=300))
    probe = FakeProbe(steps_at((10, 1.15), (13, 1.15)))  # 10..12 lie between the ends
    hunt(COMMITS, [], probe, METRIC, RULE, BUDGET, progress)
    lines = [line for line in buf.getvalue().splitlines() if line.startswith("[step")]
    shown = [re.match(r"\[step (\d+)/~(\d+)\] commit: ", line) for line in lines]
    assert lines and all(m is not None for m in shown), lines
    steps = [(int(m[1]), int(m[2])) for m in shown if m is not None]
    assert all(k <= n for k, n in steps), lines
    first_estimate = steps[0][1]
    assert any(k > first_estimate for k, _ in steps), lines  # it did run past it


def test_progress_counts_the_changes_isolation_splits() -> None:
    """Isolation's `n` counts the changes themselves (no ends among them): 'isolating 2
    changes inside the culprit', not 'bisecting 0 changes ... between known ends'."""
    from bisector.ports import ISOLATING

    buf = io.StringIO()
    progress = ConsoleProgress(Console(file=buf, width=300))
    progress(RangeNarrowed(2, ISOLATING))
    progress(RangeNarrowed(1, ISOLATING))
    assert buf.getvalue().splitlines() == [
        "isolating 2 changes inside the culprit",
        "isolating 1 change inside the culprit",
    ]


def test_progress_says_a_split_commit_lies_between_the_ends() -> None:
    """A split is not shown as `unclear`: it names the second step it shows."""
    buf = io.StringIO()
    progress = ConsoleProgress(Console(file=buf, width=300))
    progress(VerdictReached("split", "a" * 40, "aaaaaaaaaa", Verdict.UNCLEAR, 5, 23.1))
    progress(VerdictReached("fine", "b" * 40, "bbbbbbbbbb", Verdict.UNCLEAR, 5, 23.1))
    split, unclear = buf.getvalue().splitlines()
    assert split == (
        "    aaaaaaaaaa: between the ends (a second regression step): each side is bisected "
        "after 5 trials (median 23.100)"
    )
    assert unclear == "    bbbbbbbbbb: unclear after 5 trials (median 23.100)"
    progress(VerdictReached("reproduce", "c" * 40, "cccccccccc", Verdict.BAD, 15, 20.0))
    # the --bad endpoint of a run that did not reproduce is not "bad"
    assert buf.getvalue().splitlines()[-1] == (
        "    cccccccccc: bad endpoint measured after 15 trials (median 20.000)"
    )


def test_badge_says_what_the_status_says() -> None:
    """found names its culprit (or how many), inconclusive its suspect, not_reproduced itself."""
    data = _documented()
    assert badge(RunDocument.from_json(data)) == ("found", f"found: culprit {CULPRIT[:10]}")
    two = data | {"culprits": [data["culprit"], data["culprit"] | {"commit": PARENT}]}
    assert badge(RunDocument.from_json(two)) == ("found", "found: 2 culprits")
    suspect = data | {"status": "inconclusive", "culprit": None, "culprits": []}
    suspect["suspect"] = data["culprit"] | {"verified": False, "note": "too small"}
    assert badge(RunDocument.from_json(suspect)) == (
        "suspect",
        f"inconclusive: suspect {CULPRIT[:10]} (unverified)",
    )
    nothing = {"status": "not_reproduced", "metric": "latency_ms", "good": None, "bad": None}
    assert badge(RunDocument.from_json(nothing)) == ("not_reproduced", "not reproduced")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_isolation_and_verification_sections_in_headless_chromium(tmp_path: Path) -> None:
    """Chromium shows the Verification (trials, effect, p) and Isolation sections (first bad version, key old → new, items both ways)."""
    page = tmp_path / "report.html"
    page.write_text(render_html(RunDocument.from_json(_documented()), ReportData()))
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = re.sub(r"\s+", " ", done.stdout)
    assert f'id="status-badge" data-status="found">found: culprit {CULPRIT[:10]}<' in dom
    verification = dom[dom.index('<h2 id="verification">') : dom.index('<h2 id="isolation">')]
    row = verification[verification.index(CULPRIT[:10]) :]
    assert re.search(r"<td>6</td> <td>\+32\.0%</td> <td>\+6\.4</td> <td>0\.002</td>", row), row
    isolation = dom[dom.index('<h2 id="isolation">') :]
    assert "<strong>1.2.0</strong>" in isolation  # fastpad's first bad version
    assert "configs/serving.yaml:batching.pad_to_target" in isolation
    assert "<code>false</code>" in isolation and "<code>true</code>" in isolation
    both = isolation[isolation.index("Items verified both ways") :]
    assert both.count("passed: parent code + fastpad (regressed)") == 2


def test_stderr_lines_from_threads_never_mix() -> None:
    """Two threads writing to the CLI's stderr, one in pieces, produce only whole lines of each."""
    target = io.StringIO()
    lines = WholeLines(target)

    def progress() -> None:
        for i in range(300):
            for piece in ("[step ", str(i), "] commit: ", "0123456789", " subject", "\n"):
                lines.write(piece)
                time.sleep(0)  # a writer doing I/O between pieces lets the other thread in

    def logs() -> None:
        for i in range(300):
            lines.write(f"2026-12-04T00:00:00Z [info     ] environment built key=venv-{i}\n")
            lines.flush()

    threads = [threading.Thread(target=progress), threading.Thread(target=logs)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, as a loaded machine does
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    written = target.getvalue().splitlines()
    assert len(written) == 600
    step = re.compile(r"\[step \d+\] commit: 0123456789 subject")
    log = re.compile(r"2026-12-04T00:00:00Z \[info     \] environment built key=venv-\d+")
    assert all(step.fullmatch(w) or log.fullmatch(w) for w in written), written
