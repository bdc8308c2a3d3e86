"""The benchmark protocol: one trial, its outcome, its logs, its process group."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bisector.builders.base import BuiltEnv
from bisector.config import Benchmark
from bisector.engine.runner import TrialRunner, parse_output
from bisector.ports import TrialStatus


def _script(tmp_path: Path, body: str, name: str = "bench.py") -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def _alive(pid: int) -> bool:
    """True when `pid` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state not in ("Z", "X")


def test_parse_takes_last_json_object_line() -> None:
    """The last line that is a JSON object wins; later non-JSON lines are ignored."""
    out = '{"latency_ms": 1}\nwarming up\n{"latency_ms": [1.5, 2], "acc": 0.9, "_gpu": {"t": 40}}\ndone\n[1, 2]\n'
    parsed = parse_output(out)
    assert parsed is not None
    metrics, meta = parsed
    assert metrics == {"latency_ms": (1.5, 2.0), "acc": (0.9,)}
    assert meta == {"_gpu": {"t": 40}}


def test_parse_keeps_non_numeric_values_as_metadata() -> None:
    """Booleans, strings, NaN and empty lists are never samples."""
    parsed = parse_output('{"a": true, "b": "x", "c": NaN, "d": [], "e": [1, "2"], "f": 3}')
    assert parsed is not None
    metrics, meta = parsed
    assert metrics == {"f": (3.0,)}
    assert set(meta) == {"a", "b", "c", "d", "e"}


def test_parse_keeps_numbers_beyond_the_judges_range_as_metadata() -> None:
    """1e308 (near a float's maximum) overflowed the judge's arithmetic (a ZeroDivisionError,
    a median of inf, `Infinity` in the JSON document): above `MAX_MAGNITUDE` a number is not
    a sample; at it, it still is."""
    parsed = parse_output('{"a": 1e308, "b": [1, -1e301], "c": 1e300, "d": -1e300}')
    assert parsed is not None
    metrics, meta = parsed
    assert metrics == {"c": (1e300,), "d": (-1e300,)}
    assert meta == {"a": 1e308, "b": [1, -1e301]}


def test_a_json_line_after_a_byte_order_mark_is_the_result(tmp_path: Path) -> None:
    """Windows tools print a UTF-8 BOM first: `\\ufeff{...}` read as 'printed no JSON line'."""
    assert parse_output('\ufeff{"latency_ms": 1}\r\n') == ({"latency_ms": (1.0,)}, {})
    argv = _script(
        tmp_path,
        """
        import sys
        sys.stdout.buffer.write(b'\\xef\\xbb\\xbf{"latency_ms": [2, 3]}\\r\\n')
    """,
    )
    result = TrialRunner(tmp_path / "run", timeout_s=20).measure_once(
        argv, cwd=tmp_path, env=os.environ
    )
    assert result.status is TrialStatus.OK, result.reason
    assert result.metrics == {"latency_ms": (2.0, 3.0)}


def test_parse_without_json_object_is_none() -> None:
    """No JSON object line at all gives None."""
    assert parse_output("hello\n[1, 2]\n{broken\n") is None


def test_ok_trial_keeps_logs_and_metrics(tmp_path: Path) -> None:
    """Exit 0 with a metrics line is a measurement; stdout and stderr are kept as files."""
    argv = _script(
        tmp_path,
        """
        import json, os, sys
        print("noise")
        print("to stderr", file=sys.stderr)
        print(json.dumps({"latency_ms": [10, 11], "_cwd": os.getcwd(), "_token": os.environ["BENCH_TOKEN"]}))
    """,
    )
    runner = TrialRunner(tmp_path / "run", timeout_s=20)
    result = runner.measure_once(argv, cwd=tmp_path, env={**os.environ, "BENCH_TOKEN": "t0"})
    assert result.status is TrialStatus.OK and result.exit_code == 0
    assert result.metrics == {"latency_ms": (10.0, 11.0)}
    assert result.meta == {"_cwd": str(tmp_path), "_token": "t0"}
    assert result.stdout_path == tmp_path / "run" / "trial-1.out"
    assert "noise" in result.stdout_path.read_text()
    assert result.stderr_path.read_text() == "to stderr\n"
    assert result.duration_s > 0


def test_exit_125_is_a_skip_without_retry(tmp_path: Path) -> None:
    """Exit 125 marks the commit untestable at once."""
    argv = _script(tmp_path, "raise SystemExit(125)\n")
    result = TrialRunner(tmp_path / "run", timeout_s=20).measure_once(
        argv, cwd=tmp_path, env=os.environ
    )
    assert result.status is TrialStatus.SKIP and result.exit_code == 125 and result.attempts == 1


def test_failure_is_retried_once_then_skipped(tmp_path: Path) -> None:
    """Exit 1 is retried once; a second failure skips the candidate with both logs kept."""
    counter = tmp_path / "count"
    argv = _script(
        tmp_path,
        f"""
        import pathlib, sys
        p = pathlib.Path({str(counter)!r})
        p.write_text(p.read_text() + "x" if p.exists() else "x")
        print("boom", file=sys.stderr)
        sys.exit(1)
    """,
    )
    result = TrialRunner(tmp_path / "run", timeout_s=20).measure_once(
        argv, cwd=tmp_path, env=os.environ
    )
    assert counter.read_text() == "xx"
    assert result.status is TrialStatus.SKIP and result.attempts == 2
    assert result.reason == "failed twice: exited 1: boom; then exited 1: boom"
    assert result.meta == {"_reason": "exited 1: boom", "_attempts": 2}  # journaled
    assert result.earlier[0].stderr_path.read_text() == "boom\n"
    assert result.stderr_path.name == "trial-2.err"


def test_failure_then_success_is_a_measurement(tmp_path: Path) -> None:
    """A flaky first trial followed by a good one yields the good one."""
    flag = tmp_path / "flag"
    argv = _script(
        tmp_path,
        f"""
        import pathlib, sys
        p = pathlib.Path({str(flag)!r})
        if not p.exists():
            p.write_text("1"); sys.exit(3)
        print('{{"m": 1}}')
    """,
    )
    result = TrialRunner(tmp_path / "run", timeout_s=20).measure_once(
        argv, cwd=tmp_path, env=os.environ
    )
    assert (
        result.status is TrialStatus.OK
        and result.attempts == 2
        and result.earlier[0].exit_code == 3
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("print('no json here')", "printed no JSON line"),
        # run by hand, stdout and stderr share the terminal: say where the line went
        (
            "import sys; print('{\"t\": 1}', file=sys.stderr)",
            "printed no JSON line on stdout, but one on stderr (the result goes on stdout)",
        ),
        ('print(\'{"name": "x"}\')', 'printed no numeric metric: name was not a number ("x")'),
    ],
)
def test_exit_0_without_metrics_is_a_failed_trial(tmp_path: Path, body: str, reason: str) -> None:
    """Exit 0 without a usable metrics line is a failure, not a measurement."""
    argv = _script(tmp_path, body + "\n")
    result = TrialRunner(tmp_path / "run", timeout_s=20).trial(argv, cwd=tmp_path, env=os.environ)
    assert result.status is TrialStatus.FAILED and result.reason == reason


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """On timeout the benchmark and the grandchild it spawned are both gone."""
    pidfile = tmp_path / "grandchild.pid"
    argv = _script(
        tmp_path,
        f"""
        import pathlib, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        pathlib.Path({str(pidfile)!r}).write_text(str(child.pid))
        time.sleep(60)
    """,
    )
    runner = TrialRunner(tmp_path / "run", timeout_s=1.5, grace_s=0.5)
    result = runner.trial(argv, cwd=tmp_path, env=os.environ)
    assert result.status is TrialStatus.FAILED and result.timed_out and result.exit_code is None
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_trial_numbers_continue_after_existing_logs(tmp_path: Path) -> None:
    """A resumed run does not overwrite the logs of earlier trials."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "trial-7.out").write_text("old")
    argv = _script(tmp_path, "print('{\"m\": 1}')\n")
    result = TrialRunner(run, timeout_s=20).trial(argv, cwd=tmp_path, env=os.environ)
    assert result.stdout_path.name == "trial-8.out"
    assert (run / "trial-7.out").read_text() == "old"


def test_measure_in_runs_with_the_built_env(tmp_path: Path) -> None:
    """`python` in the configured command is the env's interpreter; env layers apply in order."""
    (tmp_path / "bench.py").write_text(
        "import json, os, sys\nprint(json.dumps({'m': 1, '_exe': sys.executable, '_a': os.environ['A'], '_b': os.environ['B']}))\n"
    )
    built = BuiltEnv("k", Path(sys.executable), tmp_path, {"A": "env", "B": "env"})
    benchmark = Benchmark(command=["python", "bench.py"], env={"B": "bench"})
    result = TrialRunner(tmp_path / "run", timeout_s=20).measure_in(built, benchmark)
    assert result.ok
    assert result.meta == {"_exe": sys.executable, "_a": "env", "_b": "bench"}
