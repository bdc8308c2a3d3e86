"""`bisector runs` and `bisector report` against odd options and a journal edited by hand.

One small bisection (local builder, a deterministic benchmark) makes the journal; each
test works on its own copy of the repository.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bisector.testing.gitutil import commit, make_repo
from tests.conftest import BENCH_PY_CONFIG, run_cli, tree_digest

BENCH = """\
import json
extra = 0.0 if "fast: true" in open("configs/s.yaml").read() else 10.0
print(json.dumps({"latency_ms": [float(open("slow.txt").read()) + extra] * 3}))
"""
CONFIG = BENCH_PY_CONFIG


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose journal holds one finished run (v1..v2, culprit 'Slow down')."""
    repo = make_repo(tmp_path_factory.mktemp("runs") / "repo")
    first = {"bench.py": BENCH, "bisector.yaml": CONFIG, "configs/s.yaml": "fast: true\n"}
    commit(repo, {**first, "slow.txt": "10\n"}, "i", tag="v1")
    commit(repo, {"a.txt": "1\n"}, "unrelated")
    commit(repo, {"slow.txt": "20\n"}, "Slow down")
    commit(repo, {"a.txt": "2\n"}, "unrelated again", tag="v2")
    done = run_cli("run", "--good", "v1", "--bad", "v2", cwd=repo)
    assert done.returncode == 0, done.stderr
    return repo


@pytest.fixture
def repo(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "repo", symlinks=True))


def test_a_limit_larger_than_sqlite_takes_lists_every_run(repo: Path) -> None:
    done = run_cli("runs", "--json", "--limit", "99999999999999999999", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in json.loads(done.stdout)["runs"]] == ["found"]


def test_an_isolation_run_is_neither_listed_nor_the_latest_report(repo: Path) -> None:
    """`bisector config --good/--bad` journals its run (so it resumes), but its document is
    not a bisection's: `runs` listed it and crashed on its culprit (no commit), and `report
    latest` rendered it as a broken bisection (the HTML one crashed)."""
    bisection = json.loads(run_cli("report", "latest", "--format", "json", cwd=repo).stdout)
    (repo.parent / "good.yaml").write_text("fast: true\n")
    (repo.parent / "bad.yaml").write_text("fast: false\n")
    isolation = run_cli(
        "config", "--good", "../good.yaml", "--bad", "../bad.yaml",
        "--target", "configs/s.yaml", "--json", cwd=repo,
    )  # fmt: skip
    assert isolation.returncode == 0, isolation.stderr
    isolation_id = json.loads(isolation.stdout)["run_id"]
    listed = run_cli("runs", "--json", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [bisection["run_id"]]
    assert run_cli("runs", cwd=repo).returncode == 0
    for fmt in ("md", "html", "json"):
        latest = run_cli("report", "latest", "--format", fmt, cwd=repo)
        assert latest.returncode == 0, latest.stderr
        assert bisection["run_id"] in latest.stdout
    refused = run_cli("report", isolation_id, cwd=repo)
    assert refused.returncode == 2 and refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert lines[0].startswith(f"error: run {isolation_id} is an isolation"), refused.stderr
    assert [line.split(":")[0] for line in lines] == ["error", "hint"]


REPORT, HTML, RUNS = ("report", "latest"), ("report", "latest", "--format", "html"), ("runs",)


@pytest.mark.parametrize(
    ("edit", "refused"),
    [
        ("UPDATE runs SET result='not json'", (REPORT, HTML, RUNS)),
        ("UPDATE runs SET result='[1, 2]'", (REPORT, HTML, RUNS)),
        ("UPDATE runs SET result='{}'", (REPORT, HTML)),  # `runs` shows no culprit
        ("UPDATE runs SET result=json_set(result, '$.status', 'weird')", (REPORT, HTML)),
        ("UPDATE runs SET result=json_set(result, '$.measurements', 'many')", (REPORT, HTML)),
        ("UPDATE runs SET result=json_set(result, '$.culprit.commit', 3)", (RUNS,)),
        ("UPDATE runs SET options='nope'", (REPORT, HTML, RUNS)),
    ],
)
def test_a_journal_edited_by_hand_is_named_not_an_internal_error(
    repo: Path, edit: str, refused: tuple[tuple[str, ...], ...]
) -> None:
    """A journal row edited into something else: `report` and `runs` say which file holds
    a damaged record (exit 2, one `error:` and one `hint:` line), and change nothing."""
    journal = repo / ".bisector" / "journal.sqlite"
    with sqlite3.connect(journal) as db:
        db.execute(edit)
    db.close()
    before = tree_digest(repo / ".bisector")
    for args in (REPORT, HTML, RUNS):
        done = run_cli(*args, cwd=repo)
        if args not in refused:
            assert done.returncode == 0, (args, done.stderr)
            continue
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert [line.split(":")[0] for line in lines] == ["error", "hint"], done.stderr
        assert f"the journal {journal} holds a damaged record" in lines[0]
        assert done.stdout == ""
    assert tree_digest(repo / ".bisector") == before


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE trials SET metrics='x'",
        "UPDATE trials SET metrics='[1, 2]'",
        "UPDATE trials SET metrics=json_set(metrics, '$.latency_ms', 'fast')",
        "UPDATE trials SET metrics=json_set(metrics, '$.latency_ms', json('[null]'))",
        "UPDATE trials SET meta='[]'",
    ],
)
def test_a_trial_row_edited_by_hand_is_named_not_an_internal_error(repo: Path, edit: str) -> None:
    """The HTML report plots the run's trials; a trial row edited into something else was
    an internal error (exit 1). It is the same damaged-record error a run row gives, and a
    new run that would reuse the trial says so too."""
    journal = repo / ".bisector" / "journal.sqlite"
    with sqlite3.connect(journal) as db:
        db.execute(edit)
    db.close()
    before = tree_digest(repo / ".bisector")
    for args in (HTML, ("run", "--good", "v1", "--bad", "v2")):
        done = run_cli(*args, cwd=repo)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert [line.split(":")[0] for line in lines[-2:]] == ["error", "hint"], done.stderr
        assert lines[-2].startswith(
            f"error: the journal {journal} holds a damaged record of a trial"
        )
        if args == HTML:
            assert len(lines) == 2 and done.stdout == ""
            assert tree_digest(repo / ".bisector") == before
