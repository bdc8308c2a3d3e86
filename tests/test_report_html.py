"""The HTML report renders offline in headless Chromium, with its plots."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bisector.document import RunDocument
from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.gitrepo import GitRepo
from bisector.report.html import collect
from bisector.report.plots import range_svg
from bisector.store.journal import Journal
from bisector.testing.gitutil import git
from bisector.testing.sample import SampleRepo, SampleSpec, build_sample_repo
from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # the reports are of a whole bisection of a sample repo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def found_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    path = tmp_path_factory.mktemp("html") / "repo"
    spec = SampleSpec(
        n_commits=12, culprit=9, repeats=(4, 8), releases=("v2.3.0", "v2.3.1", "v2.4.0")
    )
    sample = build_sample_repo(path, spec)
    outcome = run_bisection(RunRequest(good="v2.3.1", bad="v2.4.0", repo=path))
    doc = outcome.document.to_json()
    assert doc["culprit"]["commit"] == sample.culprit
    return path, doc


def test_report_html_is_one_offline_file_with_embedded_plots(
    found_run: tuple[Path, dict[str, object]],
) -> None:
    """The run writes report.html with the range plot inline (SVG), a base64 PNG, the culprit and the diff tables, and nothing remote."""
    _repo, doc = found_run
    html = Path(str(doc["report"])).read_text()
    assert len(re.findall(r'<img class="plot" alt="[^"]+" src="data:image/png;base64,', html)) == 1
    assert html.count('<div class="plot" id="range-plot"') == 1 and html.count("<svg") == 1
    assert "Pad requests to the target batch size" in html
    assert "tokenkit" in html and "model.dtype" in html
    assert not re.search(r'(src|href)="https?:', html)


def test_report_command_renders_html_from_the_journal(
    found_run: tuple[Path, dict[str, object]],
) -> None:
    """`bisector report RUN_ID --format html` prints the same page from the journal."""
    repo, doc = found_run
    done = run_cli("report", str(doc["run_id"]), "--format", "html", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<!doctype html>") and "data:image/png;base64," in done.stdout
    assert _range_plot(done.stdout) == _range_plot(Path(str(doc["report"])).read_text())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(
    found_run: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    """Headless Chromium loads the page: its sections, a badge that says the status, one plotted point per trial of the run, a legend of every mark; the screenshot is kept."""
    repo, doc = found_run
    url = Path(str(doc["report"])).as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('src="data:image/png;base64,') == 1
    culprit = doc["culprit"]
    assert isinstance(culprit, dict)
    assert f">found: culprit {culprit['commit'][:10]}</span>" in dom.stdout
    for section in ('<h2 id="verification">', '<h2 id="isolation">'):
        assert section in dom.stdout
    # One mark per trial of this run (fresh store: none reused) on a commit of the range.
    with Journal(repo / ".bisector") as journal, GitRepo(repo) as git_repo:
        good = str(doc["good"]["commit"])  # type: ignore[index]
        bad = str(doc["bad"]["commit"])  # type: ignore[index]
        in_range = {good} | {c.sha for c in git_repo.commits_between(good, bad, first_parent=True)}
        expected = sum(
            1
            for sha in in_range
            for t in journal.commit_trials(sha, str(doc["bench_key"]))
            if t.run_id == doc["run_id"] and t.ok and t.metrics.get(str(doc["metric"]))
        )
    plot = dom.stdout[dom.stdout.index('id="range-plot"') :]
    plot = plot[: plot.index("</svg>")]
    groups = re.findall(r'<g id="trials-\d+">(.*?)</g>\s*</g>', plot, flags=re.S)
    assert sum(g.count("<use ") for g in groups) == expected > 0
    for label in ("trials of a good commit", "trials of a bad commit", "median of a commit"):
        assert label in plot
    assert "culprit: first bad commit right of the line" in plot
    shot = tmp_path / "report-screenshot.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000  # a blank page is a few kB
    # Kept where a CI run can collect it; the source tree is never written by tests.
    keep = os.environ.get("BISECTOR_SCREENSHOT_DIR")
    if keep:
        shutil.copyfile(shot, Path(keep) / "report-screenshot.png")


RANGE_PLOT = re.compile(r'<div class="plot" id="range-plot"[^>]*>(<svg.*?</svg>)', flags=re.S)


@pytest.fixture(scope="module")
def merged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleRepo, RunDocument]:
    path = tmp_path_factory.mktemp("merged") / "repo"
    spec = SampleSpec(n_commits=14, culprit=12, merges=True, culprit_in_branch=True, repeats=(3, 8))
    sample = build_sample_repo(path, spec)
    outcome = run_bisection(RunRequest(good="v2.3.0", bad="v2.4.0", repo=path, all_commits=True))
    assert (
        outcome.document.culprit is not None and outcome.document.culprit.commit == sample.culprit
    )
    return sample, outcome.document


def _range_plot(html: str) -> str:
    (png,) = RANGE_PLOT.findall(html)
    return str(png)


def test_all_commits_run_plots_the_merged_branch_commits(
    merged_run: tuple[SampleRepo, RunDocument],
) -> None:
    """An `--all-commits` run's page plots the merged branches' commits, the culprit among them, also when re-rendered."""
    sample, doc = merged_run
    assert doc.options is not None and doc.options.all_commits
    branch = set(git(sample.path, "rev-list", "v2.3.0..v2.4.0").split()) - set(sample.commits)
    assert sample.culprit in branch and len(branch) >= 4
    with Journal(sample.path / ".bisector") as journal, GitRepo(sample.path) as repo:
        stored = RunDocument.from_json(journal.run(str(doc.run_id)).result or {})
        data = collect(stored, journal, repo)
    labels = [p.label for p in data.points]
    assert {sha[:10] for sha in branch} <= set(labels)
    assert data.culprit_index is not None and labels[data.culprit_index] == sample.culprit[:10]
    # The page embeds exactly this plot, in the run's report and in `bisector report`.
    expected = range_svg(data.points, doc.metric, data.culprit_index)
    assert _range_plot(Path(str(doc.report)).read_text()) == expected
    done = run_cli("report", str(doc.run_id), "--format", "html", "--repo", str(sample.path))
    assert done.returncode == 0, done.stderr
    assert _range_plot(done.stdout) == expected


def test_report_after_a_config_edit_still_plots_the_runs_trials(
    merged_run: tuple[SampleRepo, RunDocument],
    tmp_path: Path,
) -> None:
    """After the benchmark command in bisector.yaml changes, `report RUN_ID --format html` still plots the run's trials."""
    sample, doc = merged_run
    repo = tmp_path / "repo"
    shutil.copytree(sample.path, repo, symlinks=True)
    config = repo / "bisector.yaml"
    text = config.read_text()
    assert "command: [python, bench.py]" in text
    config.write_text(
        text.replace("command: [python, bench.py]", "command: [python, bench.py, --edited]")
    )
    done = run_cli("report", str(doc.run_id), "--format", "html", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('src="data:image/png;base64,') == 1  # distributions
    assert done.stdout.count('id="range-plot"') == 1
    assert _range_plot(done.stdout) == _range_plot(Path(str(doc.report)).read_text())


def test_endpoints_table_counts_trials_and_shows_10_character_commits(
    found_run: tuple[Path, dict[str, object]],
) -> None:
    """The endpoints table counts trials, as the terminal's '(medians of all 6 and 5
    endpoint trials)' and the steps do (it counted the samples within them: 60 / 50), and
    every commit on the page is shown with 10 characters, as the terminal and report.md."""
    _repo, doc = found_run
    html = Path(str(doc["report"])).read_text()
    table = html[html.index("<h2>Endpoints</h2>") :]
    table = table[: table.index("</table>")]
    assert "<th>trials</th>" in table and "<th>samples</th>" not in table
    noise = doc["noise"]
    assert isinstance(noise, dict)
    for name in ("good", "bad"):
        end = doc[name]
        assert isinstance(end, dict)
        row = re.search(rf"<tr><td>{name}</td>.*?</tr>", table, flags=re.S)
        assert row is not None, table
        assert f"<code>{end['commit'][:10]}</code>" in row.group(0)
        assert f"<td>{noise[name]['processes']}</td></tr>" in row.group(0), row.group(0)
    assert not re.search(r"<code>[0-9a-f]{11,40}</code>", html)
