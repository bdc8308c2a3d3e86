"""The words of a failed trial's reason and of an endpoint that cannot be measured
(`bisector.engine.trialreason`): exact, one line, control characters written out."""

from __future__ import annotations

import math
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bisector.core.sampling import EndpointUnmeasurable
from bisector.core.types import Commit
from bisector.engine import trialreason as tr
from bisector.errors import BisectorError
from bisector.executors.logs import TrialLogs
from bisector.ports import TrialResult, TrialStatus


def _err(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trial-1.err"
    path.write_text(text)
    return path


def test_exited_names_the_code_and_the_last_stderr_line(tmp_path: Path) -> None:
    err = _err(tmp_path, "Traceback (most recent call last):\n  ...\nRuntimeError: boom\n\n")
    assert tr.exited(1, err) == "exited 1: RuntimeError: boom"
    assert tr.exited(3, _err(tmp_path, "")) == "exited 3"
    assert tr.exited(3, tmp_path / "missing.err") == "exited 3"
    assert tr.exited(3) == "exited 3"
    assert tr.exited(None) == "ended without an exit code"


def test_exit_125_and_signals_say_what_they_mean(tmp_path: Path) -> None:
    assert tr.exited(125, _err(tmp_path, "no GPU\n")) == (
        "exited 125 (the benchmark says it cannot test this commit): no GPU"
    )
    assert tr.exited(-signal.SIGKILL) == "was killed by SIGKILL"
    assert tr.exited(-signal.SIGSEGV) == "was killed by SIGSEGV"
    assert tr.exited(-200) == "was killed by signal 200"


def test_a_stderr_line_is_escaped_and_trimmed(tmp_path: Path) -> None:
    """An escape sequence or a carriage return is written out, not sent to the terminal;
    a long line is cut to about `LINE_CHARS`."""
    assert tr.exited(1, _err(tmp_path, "ok\n\x1b[2Jgone\rhidden\n")) == (
        "exited 1: \\x1b[2Jgone\\x0dhidden"
    )
    assert tr.exited(1, _err(tmp_path, "RuntimeError: boom\r\n")) == "exited 1: RuntimeError: boom"
    long = tr.exited(1, _err(tmp_path, "x" * 5000 + "\n"))
    assert long == "exited 1: " + "x" * (tr.LINE_CHARS - 3) + "..."
    # only the end of a huge log is read: its last line still comes out
    assert tr.exited(1, _err(tmp_path, "y\n" * 100_000 + "the end\n")) == "exited 1: the end"


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"latency_ms": math.nan}, "printed no numeric metric: latency_ms was NaN"),
        ({"latency_ms": math.inf}, "printed no numeric metric: latency_ms was infinite"),
        ({"t": "fast"}, 'printed no numeric metric: t was not a number ("fast")'),
        ({"t": None}, "printed no numeric metric: t was not a number (null)"),
        ({"t": True}, "printed no numeric metric: t was not a number (true)"),
        ({"t": []}, "printed no numeric metric: t was an empty list"),
        ({"t": [1.0, math.nan]}, "printed no numeric metric: t was a list holding NaN"),
        ({"t": [1.0, None]}, "printed no numeric metric: t was a list holding not a number (null)"),
        (
            {"t": [[1, 2], [3]]},  # it said "a list holding a list holding not a number (null)"
            "printed no numeric metric: t was a list holding a list ([1, 2]), not numbers",
        ),
        ({"t": 10**400}, "printed no numeric metric: t was too large a number"),
        # a float's maximum, a common "failed" sentinel: the judge's arithmetic overflowed
        ({"t": 1.7976931348623157e308}, "printed no numeric metric: t was too large a number"),
        (
            {"t": [1.0, -1e301]},
            "printed no numeric metric: t was a list holding too large a number",
        ),
        (
            {"_gpu": "x", "t": "a", "u": "b"},
            'printed no numeric metric: t was not a number ("a") '
            "(and 1 more keys that are not numbers)",
        ),
        ({"_gpu": "x"}, "printed a JSON line with no metric in it"),
        ({}, "printed a JSON line with no metric in it"),
        ({"t\x1b[0m": "\x07"}, 'printed no numeric metric: t\\x1b[0m was not a number ("\\u0007")'),
    ],
)
def test_no_metric_says_why_the_value_is_not_one(meta: dict[str, Any], words: str) -> None:
    assert tr.no_metric(meta) == words


def _result(status: TrialStatus, reason: str = "", attempts: int = 1) -> TrialResult:
    p = Path("trial-1.out")
    return TrialResult(status, {}, {"_gpu": "A100"}, 1, 0.1, p, p, reason, attempts=attempts)


def test_noted_keeps_the_last_reason_and_the_attempts_in_the_metadata() -> None:
    ok = _result(TrialStatus.OK)
    assert tr.noted(ok) is ok
    assert tr.noted(_result(TrialStatus.SKIP, "exited 125")).meta == {
        "_gpu": "A100",
        "_reason": "exited 125",
    }
    twice = tr.noted(_result(TrialStatus.SKIP, "failed twice: a; then b", 2), "exited 1: b")
    assert twice.meta == {"_gpu": "A100", "_reason": "exited 1: b", "_attempts": 2}


@dataclass
class _Row:
    status: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def test_trials_failed_counts_processes_and_names_the_last_reason() -> None:
    skip = _Row("skip", {"_reason": "timed out after 5s", "_attempts": 2})
    assert tr.trials_failed([skip]) == "2 of 2 trials failed, the last timed out after 5s"
    assert tr.trials_failed([_Row("ok"), _Row("ok"), skip]) == (
        "2 of 4 trials failed, the last timed out after 5s"
    )
    assert tr.trials_failed([_Row("skip", {"_reason": "exited 125"})]) == (
        "its one trial exited 125"
    )
    assert tr.trials_failed([_Row("ok")]) == ""
    assert tr.trials_failed([]) == ""


def test_trials_journaled_before_reasons_were_still_say_their_exit() -> None:
    assert tr.trials_failed([_Row("skip", exit_code=125)]) == (
        "its one trial exited 125 (the benchmark says it cannot test this commit)"
    )
    assert tr.trials_failed([_Row("skip", exit_code=-9), _Row("skip", exit_code=2)]) == (
        "2 of 2 trials failed, the last exited 2"
    )
    assert tr.trials_failed([_Row("skip", {"_attempts": "x"})]) == (
        "its one trial ended without an exit code"
    )


def test_a_ray_trial_is_journaled_with_its_reason_and_attempts(tmp_path: Path) -> None:
    logs = TrialLogs(tmp_path)
    out = {"status": "skip", "reason": "exited 1: boom", "meta": {}, "stderr": b"boom\n"}
    row = logs.row(out, sha="a" * 40, keys=("r", "e", "b"), attempts=2)
    assert (row.meta["_reason"], row.meta["_attempts"]) == ("exited 1: boom", 2)
    ok = logs.row({"status": "ok", "reason": ""}, sha="a" * 40, keys=("r", "e", "b"))
    assert "_reason" not in ok.meta and "_attempts" not in ok.meta


class _Journal:
    def __init__(self, build_log: str | None) -> None:
        self.build_log = build_log

    def failed_build(self, commit_sha: str, env_key: str) -> str | None:
        assert (commit_sha, env_key) == (GOOD.sha, "env:" + GOOD.sha)
        return self.build_log


class _Measurer:
    def __init__(self, trials: Sequence[_Row], build_log: str | None = None) -> None:
        self.journal: Any = _Journal(build_log)
        self._trials = trials

    def env_key(self, commit: Commit) -> str:
        return "env:" + commit.sha

    def trials(self, commit: Commit) -> Sequence[_Row]:
        assert commit == GOOD
        return self._trials


GOOD = Commit("abc1234def" + "0" * 30, "s", "a", "2026-01-01")


def _error(measurer: _Measurer, refs: Mapping[str, str], untestable: bool = True) -> Any:
    exc = EndpointUnmeasurable("core's words", side="good", commit=GOOD, untestable=untestable)
    return tr.endpoint_error(exc, measurer, refs, Path("/runs/r1"))  # type: ignore[arg-type]


def test_endpoint_error_names_the_endpoint_its_ref_and_why() -> None:
    skip = _Row("skip", {"_reason": "exited 1: RuntimeError: boom", "_attempts": 2})
    error = _error(_Measurer([skip]), {GOOD.sha: "v1"})
    assert isinstance(error, BisectorError)
    assert error.message == (
        "the good endpoint v1 (abc1234def) could not be measured: "
        "2 of 2 trials failed, the last exited 1: RuntimeError: boom"
    )
    assert error.hint == (
        "see the trial logs under /runs/r1; once the cause is fixed, the same command "
        "measures the endpoints again"
    )
    # a sha the user typed is not repeated; a ref with control characters is written out
    assert _error(_Measurer([skip]), {GOOD.sha: "abc1234"}).message.startswith(
        "the good endpoint abc1234def could not be measured: 2 of 2"
    )
    assert _error(_Measurer([skip]), {GOOD.sha: "v\x1b1"}).message.startswith(
        "the good endpoint v\\x1b1 (abc1234def) could not"
    )


def test_endpoint_error_of_a_failed_build_and_of_a_missing_metric() -> None:
    built = _error(_Measurer([], build_log="/runs/r1/build.log"), {})
    assert built.message == (
        "the good endpoint abc1234def could not be measured: its environment did not build "
        "(log: /runs/r1/build.log)"
    )
    assert _error(_Measurer([]), {}).message == "the good endpoint abc1234def could not be measured"
    missing = EndpointUnmeasurable("printed x but not t", side="bad", commit=GOOD, untestable=False)
    assert tr.endpoint_error(missing, _Measurer([]), {}, Path("/r")) is missing  # type: ignore[arg-type]
