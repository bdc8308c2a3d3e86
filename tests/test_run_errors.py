"""Runs that cannot go on: refused before measuring, or ended in an error at an endpoint.

`run --rollback` without `rollback.target` is refused before anything is measured. A run
whose endpoint cannot be measured ends in the `error` state: `runs` says so (not
`running`), and the same command, once the cause is fixed, measures the endpoint again
instead of replaying the failed trials. A killed run (no end recorded) still resumes.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from bisector.store.journal import RUN_ERROR, Journal, TrialRow
from bisector.testing import gitutil

from .conftest import run_cli

# Counts its own runs in COUNT_FILE, then prints the metric.
BENCH = """\
import json, os, pathlib
count = pathlib.Path(os.environ["COUNT_FILE"])
count.write_text(str(int(count.read_text() or 0) + 1) if count.exists() else "1")
print(json.dumps({"t": 1.0}))
"""


def _repo(tmp_path: Path, command: list[str], extra: str = "") -> Path:
    repo = gitutil.make_repo(tmp_path / "repo")
    config = (
        f"benchmark:\n  command: {json.dumps(command)}\n  repeats: {{min: 3, max: 5}}\n"
        f"  env: {{COUNT_FILE: {json.dumps(str(tmp_path / 'count'))}}}\n"
        f"metrics:\n  t: {{direction: lower}}\n{extra}"
    )
    gitutil.commit(
        repo, {"bench.py": BENCH, "bisector.yaml": config, "a.txt": "1\n"}, "first", tag="v1.0"
    )
    gitutil.commit(repo, {"a.txt": "2\n"}, "second", tag="v1.1")
    return repo


def _run(repo: Path, *extra: str) -> tuple[int, str, str]:
    done = run_cli(
        "run", "--good", "v1.0", "--bad", "v1.1", "--json", "--repo", str(repo), *extra, timeout=300
    )
    return done.returncode, done.stdout, done.stderr


def _error_lines(stderr: str) -> list[str]:
    lines = stderr.strip().splitlines()
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), stderr
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], stderr
    return lines


def test_rollback_without_a_target_is_refused_before_measuring(tmp_path: Path) -> None:
    """`run --rollback` with no `rollback.target`: one error, a hint `run` can follow, exit 2,
    no benchmark started, no store, no run or trial journaled."""
    repo = _repo(tmp_path, [sys.executable, "bench.py"])
    code, out, err = _run(repo, "--rollback")
    assert code == 2, err
    assert out == ""
    error, hint = _error_lines(err)
    assert "rollback.target" in error and "--rollback" in error
    assert "set rollback.target in bisector.yaml" in hint
    # `run` has no --target: the hint names it only as `bisector rollback`'s
    assert "pass --target" not in hint and "bisector rollback --to REF --target DIR" in hint
    assert not (tmp_path / "count").exists()  # the benchmark never ran
    assert not (repo / ".bisector").exists()  # no journal, so no run and no trial


def test_rollback_target_that_no_rollback_may_write_is_refused_before_measuring(
    tmp_path: Path,
) -> None:
    """A `rollback.target` that exists and is not a folder is refused up front too (one
    outside the repository: inside it, any target is refused, tests/test_rollback_guard.py)."""
    (tmp_path / "a.txt").write_text("not a folder\n")
    target = f"rollback:\n  target: {tmp_path / 'a.txt'}\n"
    repo = _repo(tmp_path, [sys.executable, "bench.py"], extra=target)
    code, _, err = _run(repo, "--rollback")
    assert code == 2, err
    error, hint = _error_lines(err)
    assert "a.txt is a regular file, not a folder" in error
    assert "rollback.target in bisector.yaml" in hint and "--target" not in hint
    assert not (tmp_path / "count").exists()
    assert not (repo / ".bisector").exists()


def _runs(repo: Path) -> list[dict[str, object]]:
    done = run_cli("runs", "--json", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)["runs"]
    return rows


def test_an_endpoint_that_failed_is_measured_again_once_fixed(tmp_path: Path) -> None:
    """The benchmark program is missing: exit 2, and the run is listed as ended in an error.
    Installed, the same command (no --fresh) measures the endpoints and finishes."""
    program = tmp_path / "bin" / "mybench"  # not there yet
    repo = _repo(tmp_path, [str(program)])
    code, out, err = _run(repo)
    assert code == 2 and out == "", err
    error, hint = err.strip().splitlines()[-2:]  # after the trials' log lines
    assert hint.startswith("hint: ")
    short = gitutil.git(repo, "rev-parse", "v1.0^{commit}")[:10]
    assert error == (
        f"error: the good endpoint v1.0 ({short}) could not be measured: 2 of 2 trials failed, "
        f"the last could not start '{program}': No such file or directory"
    )
    assert "trial logs" in hint and "--fresh" not in hint  # the same command is enough
    (first,) = _runs(repo)
    assert first["status"] == RUN_ERROR and first["status"] != "running"
    assert first["error"] == error.removeprefix("error: ")  # `runs` says why too
    human = run_cli("runs", "--repo", str(repo))
    assert f"{first['run_id']}  " in human.stderr and "  error  " in human.stderr
    report = run_cli("report", str(first["run_id"]), "--repo", str(repo))
    assert report.returncode == 2
    assert f"error: run {first['run_id']} ended in an error: " in report.stderr
    assert "resume" not in report.stderr

    # The user installs the program; the same command now works.
    program.parent.mkdir()
    program.write_text(f"#!{sys.executable}\n{BENCH}")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    code, out, err = _run(repo)
    assert code == 3, err  # the same time at both ends: not reproduced
    assert "resuming run" not in err and "could not be measured" not in err
    doc = json.loads(out)
    assert doc["run_id"] != first["run_id"]
    # the endpoints' verdicts rest on the new trials only: none of the failed ones
    reproduce = [s["samples"] for s in doc["steps"] if s["phase"] == "reproduce"]
    assert len(reproduce) == 2 and sum(reproduce) == doc["measurements"], doc["steps"]
    assert doc["reused"]["trials"] == 0
    second, again = _runs(repo)
    assert (second["run_id"], second["status"], second["error"]) == (
        doc["run_id"],
        "not_reproduced",
        None,
    )
    assert (again["run_id"], again["status"]) == (first["run_id"], RUN_ERROR)


def _trial(run_id: str, sha: str, status: str) -> TrialRow:
    metrics = {"t": (1.0,)} if status == "ok" else {}
    return TrialRow(sha, "env", "bench", status, metrics, {}, run_id=run_id)


def _open(journal: Journal, fresh: bool = False) -> tuple[str, bool]:
    run, resumed = journal.open_run(
        key="k" * 16,
        good_ref="g",
        bad_ref="b",
        good_sha="a" * 40,
        bad_sha="b" * 40,
        metric="t",
        options={},
        fresh=fresh,
    )
    return run.id, resumed


def test_a_killed_run_resumes_with_every_trial_an_errored_one_does_not(tmp_path: Path) -> None:
    """No end recorded: the same key resumes it, failed trials included. Ended in an error:
    a new run, which reads the errored run's good trials but not its failed ones."""
    with Journal(tmp_path) as journal:
        killed, resumed = _open(journal)
        assert not resumed
        journal.add_trial(_trial(killed, "a" * 40, "skip"))
        journal.add_trial(_trial(killed, "b" * 40, "ok"))
        again, resumed = _open(journal)
        assert (again, resumed) == (killed, True)
        assert [t.status for t in journal.trials("a" * 40, "env", "bench")] == ["skip"]

        journal.record_build("a" * 40, "env", False, "log")
        journal.fail_run(killed, "the good endpoint aaaa cannot be measured", retry=["a" * 40])
        row = journal.run(killed)
        assert row.errored and row.finished is not None and row.result is None
        assert row.error == "the good endpoint aaaa cannot be measured"
        assert journal.failed_build("a" * 40, "env") is None
        assert journal.trials("a" * 40, "env", "bench") == []
        assert [t.status for t in journal.trials("b" * 40, "env", "bench")] == ["ok"]
        new, resumed = _open(journal)
        assert new != killed and not resumed
        assert journal.reused_trials(new, "bench", [("a" * 40, "env"), ("b" * 40, "env")]) == {
            killed: 1
        }
        assert journal.latest_finished() is None  # an errored run has no document
        assert journal.run(killed).status == RUN_ERROR  # --fresh abandons only `running` ones
        _open(journal, fresh=True)
        assert journal.run(killed).status == RUN_ERROR
        assert journal.run(new).status == "abandoned"


def test_a_journal_from_before_errored_runs_gains_the_column(tmp_path: Path) -> None:
    """A journal written by an earlier version (no `runs.error`) opens, and its runs read."""
    with Journal(tmp_path) as journal:
        run_id, _ = _open(journal)
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        db.execute("ALTER TABLE runs DROP COLUMN error")
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        assert "error" not in {r[1] for r in db.execute("PRAGMA table_info(runs)")}
    with Journal(tmp_path) as journal:
        assert journal.run(run_id).error is None and journal.run(run_id).status == "running"
        journal.fail_run(run_id, "why")
        assert journal.run(run_id).error == "why"


@pytest.mark.parametrize("status", ["ok", "skip"])
def test_trials_of_a_finished_run_are_read_whatever_their_status(
    tmp_path: Path, status: str
) -> None:
    """Only runs that ended in an error have their failed trials left out."""
    with Journal(tmp_path) as journal:
        run_id, _ = _open(journal)
        journal.add_trial(_trial(run_id, "a" * 40, status))
        journal.finish_run(run_id, "inconclusive", {})
        assert [t.status for t in journal.trials("a" * 40, "env", "bench")] == [status]
