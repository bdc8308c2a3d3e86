"""`run` at an endpoint whose every trial fails says why: the `error:` line names the
endpoint and its last failed trial's reason, `runs --json` keeps the same words, exit 2.

One generated repository per reason, a tiny benchmark that fails the same way at every
commit (so the good endpoint, measured first, is the one named), `benchmark.timeout: 1`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bisector.testing import gitutil

from .conftest import run_cli

# (the benchmark, the words after "could not be measured: ")
REASONS = {
    "timeout": (
        "import time\ntime.sleep(60)\n",
        "2 of 2 trials failed, the last timed out after 1s",
    ),
    "exit_125": (
        "import sys\nprint('needs a GPU', file=sys.stderr)\nsys.exit(125)\n",
        "its one trial exited 125 (the benchmark says it cannot test this commit): needs a GPU",
    ),
    "exit_1": (
        "raise RuntimeError('boom')\n",
        "2 of 2 trials failed, the last exited 1: RuntimeError: boom",
    ),
    "signal": (
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
        "2 of 2 trials failed, the last was killed by SIGKILL",
    ),
    "no_json": (
        "print('done: 12.5 ms')\n",
        "2 of 2 trials failed, the last printed no JSON line",
    ),
    "nan": (
        "print('{\"latency_ms\": NaN}')\n",
        "2 of 2 trials failed, the last printed no numeric metric: latency_ms was NaN",
    ),
    "non_numeric": (
        'print(\'{"latency_ms": "fast"}\')\n',
        '2 of 2 trials failed, the last printed no numeric metric: latency_ms was not a number ("fast")',
    ),
    # more digits than Python converts: the whole line failed to parse ("no JSON line")
    "huge_integer": (
        "print('{\"latency_ms\": ' + '9' * 5000 + '}')\n",
        "2 of 2 trials failed, the last printed no numeric metric: latency_ms was too large "
        "a number (an integer of 5000 digits)",
    ),
    "escaped": (
        "raise SystemExit('\\x1b[2Jcleared')\n",
        "2 of 2 trials failed, the last exited 1: \\x1b[2Jcleared",
    ),
}


def _repo(tmp_path: Path, bench: str) -> tuple[Path, str]:
    repo = gitutil.make_repo(tmp_path / "repo")
    config = (
        f"benchmark:\n  command: {json.dumps([sys.executable, 'bench.py'])}\n"
        "  repeats: {min: 2, max: 5}\n  timeout: 1\n"
        "metrics:\n  latency_ms: {direction: lower}\n"
    )
    gitutil.commit(repo, {"bench.py": bench, "bisector.yaml": config}, "first", tag="v1")
    gitutil.commit(repo, {"a.txt": "2\n"}, "second", tag="v2")
    return repo, gitutil.git(repo, "rev-parse", "v1^{commit}")[:10]


@pytest.mark.parametrize("name", sorted(REASONS))
def test_the_error_says_why_the_endpoint_could_not_be_measured(tmp_path: Path, name: str) -> None:
    bench, why = REASONS[name]
    repo, short = _repo(tmp_path, bench)
    done = run_cli("run", "--good", "v1", "--bad", "v2", "--json", "--repo", str(repo), timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # an error prints no document (docs/json.md)
    error, hint = done.stderr.strip().splitlines()[-2:]  # after the trials' log lines
    assert error == f"error: the good endpoint v1 ({short}) could not be measured: {why}"
    sha12 = gitutil.git(repo, "rev-parse", "v1^{commit}")[:12]
    logs = Path(hint.removeprefix("hint: see the trial logs under ").split(";")[0])
    assert logs.name == sha12 and logs.parent.parent == repo / ".bisector" / "runs", hint
    assert sorted(p.name for p in logs.iterdir())[:2] == ["trial-1.err", "trial-1.out"]
    runs = run_cli("runs", "--json", "--repo", str(repo))
    (run,) = json.loads(runs.stdout)["runs"]
    assert (run["status"], run["error"]) == ("error", error.removeprefix("error: "))


def test_a_missing_metric_keeps_its_own_words(tmp_path: Path) -> None:
    """A benchmark that prints other metrics but not this one: its own message and hint."""
    repo, _ = _repo(tmp_path, 'print(\'{"latency": 1.0, "p50": 2.0}\')\n')
    done = run_cli("run", "--good", "v1", "--bad", "v2", "--repo", str(repo), timeout=120)
    assert done.returncode == 2, done.stderr
    error, hint = done.stderr.strip().splitlines()[-2:]
    assert error == "error: the benchmark printed latency, p50 but not latency_ms"
    short = gitutil.git(repo, "rev-parse", "--short=10", "v1^{commit}")
    assert hint.startswith(f"hint: at the good endpoint v1 ({short}): ") and "--metric" in hint


def test_a_good_endpoint_at_zero_with_a_relative_threshold_is_a_config_error(
    tmp_path: Path,
) -> None:
    """A benchmark that prints 0 at the good endpoint: a relative threshold of 0 is none, so
    the run stops at the endpoints with exit 2 and the way out (QA: measured to
    `repeats.max`, then exit 4 blaming the noise)."""
    repo, short = _repo(tmp_path, "print('{\"latency_ms\": [0.0, 0.0, 0.0]}')\n")
    done = run_cli("run", "--good", "v1", "--bad", "v2", "--repo", str(repo), timeout=120)
    assert done.returncode == 2, done.stderr
    error, hint = done.stderr.strip().splitlines()[-2:]
    assert error == (
        f"error: the good endpoint v1 ({short}) measures latency_ms at 0, so its relative "
        "threshold (5%) is no threshold"
    )
    assert hint.startswith("hint: give latency_ms an absolute threshold"), hint
    config = repo / "bisector.yaml"
    config.write_text(
        config.read_text().replace("{direction: lower}", "{direction: lower, threshold: 0.5}")
    )
    again = run_cli("run", "--good", "v1", "--bad", "v2", "--repo", str(repo), timeout=120)
    assert again.returncode == 3, again.stderr  # an absolute threshold: nothing regressed
