"""The HTML report renders offline in headless Chromium, with its plots."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.testing.sample import SampleSpec, build_sample_repo
from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # the reports are of a whole bisection of a sample repo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def found_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    path = tmp_path_factory.mktemp("html") / "repo"
    spec = SampleSpec(n_commits=12, culprit=9, repeats=(4, 8), releases=("v2.3.0", "v2.3.1", "v2.4.0"))
    sample = build_sample_repo(path, spec)
    outcome = run_bisection(RunRequest(good="v2.3.1", bad="v2.4.0", repo=path))
    assert outcome.document["culprit"]["commit"] == sample.culprit
    return path, outcome.document


def test_report_html_is_one_offline_file_with_embedded_plots(found_run: tuple[Path, dict[str, object]]) -> None:
    """The run writes report.html with two base64 PNG plots, the culprit and the diff tables, and nothing remote."""
    _repo, doc = found_run
    html = Path(str(doc["report"])).read_text()
    assert len(re.findall(r'<img class="plot" alt="[^"]+" src="data:image/png;base64,', html)) == 2
    assert "Pad requests to the target batch size" in html
    assert "tokenkit" in html and "model.dtype" in html
    assert not re.search(r'(src|href)="https?:', html)


def test_report_command_renders_html_from_the_journal(found_run: tuple[Path, dict[str, object]]) -> None:
    """`bisector report RUN_ID --format html` prints the same page from the journal."""
    repo, doc = found_run
    done = run_cli("report", str(doc["run_id"]), "--format", "html", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<!doctype html>") and "data:image/png;base64," in done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(found_run: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    """Headless Chromium loads the page with its images decoded, and the screenshot is kept."""
    _repo, doc = found_run
    url = Path(str(doc["report"])).as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('src="data:image/png;base64,') == 2
    shot = tmp_path / "report-screenshot.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000  # a blank page is a few kB
    # Kept where a CI run can collect it; the source tree is never written by tests.
    keep = os.environ.get("BISECTOR_SCREENSHOT_DIR")
    if keep:
        shutil.copyfile(shot, Path(keep) / "report-screenshot.png")
