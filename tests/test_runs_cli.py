"""`bisector runs`, `report latest`, and trial reuse across runs said and never pooled across builders."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bisector.gitrepo import GitRepo
from bisector.store.journal import Journal
from bisector.testing.sample import SampleRepo
from tests.conftest import run_cli, tree_digest

pytestmark = pytest.mark.slow  # four bisections of a small sample (about 30 s)


def _run(sample: SampleRepo, builder: str, *config: str) -> tuple[dict[str, Any], str]:
    done = run_cli(
        "run",
        "--good",
        "v2.3.0",
        "--bad",
        "v2.4.0",
        "--builder",
        builder,
        "--json",
        "--repo",
        str(sample.path),
        *config,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.fixture(scope="module")
def four_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[SampleRepo, list[tuple[dict[str, Any], str]]]:
    """local, then venv, then local again, then local with another benchmark command, on one store."""
    from bisector.testing.sample import SampleSpec, build_sample_repo

    path = tmp_path_factory.mktemp("runs") / "repo"
    sample = build_sample_repo(path, SampleSpec(n_commits=6, culprit=4, builder="venv"))
    runs = [_run(sample, b) for b in ("local", "venv", "local")]
    # The same benchmark, spelled as another command: another benchmark key.
    other = path.parent / "other-command.yaml"
    text = (path / "bisector.yaml").read_text()
    assert "command: [python, bench.py]" in text
    other.write_text(text.replace("command: [python, bench.py]", "command: [python, ./bench.py]"))
    return sample, [*runs, _run(sample, "local", "--config", str(other))]


def test_reuse_is_said_and_never_crosses_builders(
    four_runs: tuple[SampleRepo, list[tuple[dict[str, Any], str]]],
) -> None:
    """A run says how many trials it reused and from which builder: venv after local reuses 0, local again reuses local's, another benchmark command 0."""
    sample, runs = four_runs
    (first, first_err), (venv, venv_err), (again, again_err), (other, _) = runs
    assert other["reused"] == {"trials": 0, "builder": "local", "runs": {}}
    assert other["bench_key"] != first["bench_key"] == again["bench_key"]
    assert first["reused"] == {"trials": 0, "builder": "local", "runs": {}}
    assert "reused no trials from the journal (builder local)" in first_err
    assert venv["reused"] == {"trials": 0, "builder": "venv", "runs": {}}
    assert "reused no trials from the journal (builder venv)" in venv_err
    reused = again["reused"]
    assert reused["builder"] == "local" and set(reused["runs"]) == {first["run_id"]}
    assert 0 < reused["trials"] == reused["runs"][first["run_id"]] <= first["measurements"]
    assert (
        f"reused {reused['trials']} trials from the journal (builder local, same benchmark; "
        f"runs {first['run_id']})" in again_err
    )
    # The page of the third run plots its own trials and those reused, none of venv's.
    with Journal(sample.path / ".bisector") as journal, GitRepo(sample.path) as git:
        good, bad = again["good"]["commit"], again["bad"]["commit"]
        in_range = {good} | {c.sha for c in git.commits_between(good, bad, first_parent=True)}
        judged = {s["commit"] for s in again["steps"]}
        plotted = [
            t
            for sha in in_range
            for t in journal.commit_trials(sha, again["bench_key"])
            if t.ok
            and t.metrics.get(again["metric"])
            and (t.run_id == again["run_id"] or (t.run_id == first["run_id"] and sha in judged))
        ]
        assert not any(t.run_id == venv["run_id"] for t in plotted)
    html = Path(again["report"]).read_text()
    plot = html[html.index('id="range-plot"') :]
    groups = re.findall(r'<g id="trials-\d+">(.*?)</g>\s*</g>', plot[: plot.index("</svg>")], re.S)
    assert sum(g.count("<use ") for g in groups) == len(plotted) > reused["trials"] > 0
    assert "reused from earlier runs with the same builder and benchmark" in html


def test_human_output_off_a_terminal_is_not_wrapped(
    four_runs: tuple[SampleRepo, list[tuple[dict[str, Any], str]]],
) -> None:
    """Piped stderr keeps each line whole: the report's path and run id on one line, progress lines unbroken."""
    _sample, runs = four_runs
    doc, err = runs[0]
    assert f"report: {doc['report']}  (run {doc['run_id']})\n" in err
    steps = [line for line in err.splitlines() if line.startswith("[step ")]
    assert steps and all(
        re.match(r"\[step \d+(/~\d+)?\] (commit|release tag|verify): [0-9a-f]{10} ", s)
        for s in steps
    )
    culprit = doc["culprit"]["subject"]
    assert any(line.startswith("culprit: ") and culprit in line for line in err.splitlines())


def test_runs_lists_id_range_status_and_culprit(
    four_runs: tuple[SampleRepo, list[tuple[dict[str, Any], str]]],
) -> None:
    """`bisector runs --json` lists every run newest first; the human list names the same."""
    sample, runs = four_runs
    done = run_cli("runs", "--json", "--repo", str(sample.path))
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["runs"]
    assert [r["run_id"] for r in listed] == [doc["run_id"] for doc, _ in reversed(runs)]
    for row, (doc, _) in zip(listed, reversed(runs), strict=True):
        assert (row["good"], row["bad"], row["status"]) == ("v2.3.0", "v2.4.0", "found")
        assert row["culprit"]["commit"] == sample.culprit == doc["culprit"]["commit"]
        assert row["builder"] == doc["options"]["builder"]
        assert row["reused_trials"] == doc["reused"]["trials"]
    human = run_cli("runs", "--repo", str(sample.path))
    assert human.returncode == 0, human.stderr
    first = runs[0][0]
    good, bad = first["good"]["commit"][:10], first["bad"]["commit"][:10]
    for doc, _ in runs:  # each ref with the commit it meant
        assert re.search(
            rf"^{doc['run_id']}  \S+  v2\.3\.0 \({good}\)\.\.v2\.4\.0 \({bad}\)  latency_ms  \w+  "
            rf"found  {sample.culprit[:10]} ",
            human.stderr,
            flags=re.M,
        ), human.stderr


def test_report_latest_and_the_hint_for_an_unknown_run(
    four_runs: tuple[SampleRepo, list[tuple[dict[str, Any], str]]],
    tmp_path: Path,
) -> None:
    """`report latest` is the newest finished run; an unknown id points at `bisector runs`; a store with no journal lists none and makes nothing."""
    sample, runs = four_runs
    done = run_cli("report", "latest", "--format", "json", "--repo", str(sample.path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["run_id"] == runs[-1][0]["run_id"]
    unknown = run_cli("report", "20990101-000000-00000000", "--repo", str(sample.path))
    assert unknown.returncode == 2
    assert "hint: list runs with `bisector runs`, or use `bisector report latest`" in unknown.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "bisector.yaml").write_bytes((sample.path / "bisector.yaml").read_bytes())
    before = tree_digest(empty)
    none = run_cli("runs", "--json", "--repo", str(empty))
    assert none.returncode == 0, none.stderr
    assert json.loads(none.stdout)["runs"] == [] and tree_digest(empty) == before
