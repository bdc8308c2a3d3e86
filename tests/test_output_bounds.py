"""Benchmark output is bounded: the parsed tail, the kept logs, the journaled metadata."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import textwrap
from pathlib import Path

from bisector.engine.runner import LOG_KEEP_BYTES, TrialRunner
from bisector.ports import TrialStatus
from bisector.store.journal import META_LIMIT_BYTES, Journal, TrialRow

MiB = 1 << 20


def _trial(tmp_path: Path, body: str) -> tuple[TrialRunner, object]:
    script = tmp_path / "bench.py"
    script.write_text(textwrap.dedent(body))
    runner = TrialRunner(tmp_path / "run", timeout_s=60, grace_s=0.5)
    return runner, runner.trial([sys.executable, str(script)], cwd=tmp_path, env=os.environ)


def test_logs_keep_their_head_and_tail_and_the_json_line_is_found(tmp_path: Path) -> None:
    """5 MiB of chatter on each stream: the trial is OK and each log keeps 1 MiB + 1 MiB."""
    _, result = _trial(
        tmp_path,
        """\
        import json, sys
        sys.stdout.write("HEAD-OUT\\n" + "o" * (5 << 20) + "\\n")
        sys.stderr.write("HEAD-ERR\\n" + "e" * (5 << 20) + "\\nTAIL-ERR\\n")
        print(json.dumps({"latency_ms": 3.0, "_gpu": {"name": "x"}}))
        """,
    )
    assert result.status is TrialStatus.OK, result.reason  # type: ignore[attr-defined]
    assert result.metrics == {"latency_ms": (3.0,)}  # type: ignore[attr-defined]
    for path, head, tail in (
        (result.stdout_path, b"HEAD-OUT", b'"latency_ms"'),  # type: ignore[attr-defined]
        (result.stderr_path, b"HEAD-ERR", b"TAIL-ERR"),
    ):  # type: ignore[attr-defined]
        data = Path(path).read_bytes()
        assert len(data) <= 2 * LOG_KEEP_BYTES + 200
        assert data.startswith(head) and tail in data[-200:]
        assert b"bytes cut from the middle of this log]" in data


def test_only_the_last_mebibyte_of_stdout_is_parsed(tmp_path: Path) -> None:
    """A JSON line longer than the parsed tail is not read whole: a failed trial that says why."""
    _, result = _trial(
        tmp_path,
        """\
        import json
        print(json.dumps({"latency_ms": 3.0, "_blob": "x" * (3 << 20)}))
        """,
    )
    assert result.status is TrialStatus.FAILED  # type: ignore[attr-defined]
    assert result.reason == "printed no JSON line (only its last 1 MiB are read)"  # type: ignore[attr-defined]


def test_journal_keeps_at_most_64_kib_of_metadata_per_trial(tmp_path: Path) -> None:
    """Megabytes of extra keys are cut to 64 KiB in the journal, small keys kept, the cut noted."""
    runner, result = _trial(
        tmp_path,
        """\
        import json
        doc = {"latency_ms": 3.0, "_big": "b" * 600000, "_gpu": {"name": "x"}}
        doc.update({f"_k{i}": "v" * 100 for i in range(2000)})
        print(json.dumps(doc))
        """,
    )
    assert result.status is TrialStatus.OK, result.reason  # type: ignore[attr-defined]
    store = tmp_path / "store"
    with Journal(store) as journal:
        for _ in range(3):
            journal.add_trial(
                TrialRow(
                    commit_sha="c" * 40,
                    env_key="e",
                    bench_key="b",
                    status="ok",
                    metrics=result.metrics,
                    meta=result.meta,
                )
            )  # type: ignore[attr-defined]
        rows = journal.trials("c" * 40, "e", "b")
    assert len(rows) == 3
    meta = rows[0].meta
    assert meta["_gpu"] == {"name": "x"} and "_big" not in meta
    assert meta["_truncated"]["keys"] == 2002 and meta["_truncated"]["bytes"] > 800000
    assert rows[0].metrics == {"latency_ms": (3.0,)}
    with sqlite3.connect(store / "journal.sqlite") as db:
        sizes = [n for (n,) in db.execute("SELECT length(meta) FROM trials")]
    assert sizes and max(sizes) <= META_LIMIT_BYTES
    assert json.loads(json.dumps(meta))  # still one JSON object


def test_a_run_id_is_safe_as_a_folder_name_whatever_its_key(tmp_path: Path) -> None:
    """An isolation run's key starts with `isolate:`; its id (the name of `runs/<id>/`)
    carries no colon, while a run's key (a digest) still gives the id its first 8."""
    with Journal(tmp_path / "store") as journal:
        ids = []
        for key in ("isolate:config:abc:def", "0123abcd" + "e" * 56):
            run, _ = journal.open_run(
                key=key,
                good_ref="config:good",
                bad_ref="config:bad",
                good_sha="a" * 40,
                bad_sha="a" * 40,
                metric="latency_ms",
                options={},
                fresh=False,
            )
            ids.append(run.id)
    assert all(":" not in i and "/" not in i for i in ids), ids
    assert ids[1].endswith("-0123abcd") and not ids[0].endswith("isolate")
