"""Why a trial failed, in words an on-call engineer can act on.

`classify` (`engine.runner`) words each failed trial's reason so that it reads after "the
last": "timed out after 30s", "exited 1: RuntimeError: boom", "printed no JSON line",
"printed no numeric metric: latency_ms was NaN". A trial that is not ok is journaled with
it (`REASON_KEY`) and, when a failure was retried, how many processes it took
(`ATTEMPTS_KEY`), so the `error:` line of an endpoint that cannot be measured says why
(`endpoint_error`), in a resumed run or a later `runs` too.

What comes from the benchmark (its last stderr line, a key, a value) is trimmed to one
line and its control characters are written out (`plumbing.escape.visible`): it is
printed on a terminal.
"""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from bisector.core.sampling import EndpointUnmeasurable
from bisector.core.types import Commit
from bisector.errors import BisectorError
from bisector.plumbing.escape import visible
from bisector.ports import TrialResult
from bisector.store.journal import Journal

REASON_KEY = "_reason"  # the journaled metadata of a trial that is not ok
ATTEMPTS_KEY = "_attempts"  # processes it took: 2 when a failure was retried
UNTESTABLE = "(the benchmark says it cannot test this commit)"
LINE_CHARS = 200
#: The largest magnitude a sample may have. Near a float's maximum (1e308, a common
#: "failed" sentinel) the judge's own arithmetic (medians, spreads, shifts) overflows.
MAX_MAGNITUDE = 1e300
_TAIL_BYTES = 8192


def shown(text: str, limit: int = LINE_CHARS) -> str:
    """`text` on one line, control characters escaped, at most about `limit` characters."""
    text = visible(" ".join(text.split("\n")).strip())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def last_line(path: Path) -> str:
    """The last non-blank line of a log (its end only is read), ready to print; "" if none."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, 2) - _TAIL_BYTES))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in tail.split("\n") if line.strip()]  # a "\r" is shown, not split
    return shown(lines[-1]) if lines else ""


def exited(code: int | None, stderr_path: Path | None = None) -> str:
    """A process that exited non-zero (or was killed by a signal), with its last stderr line."""
    if code is None:
        what = "ended without an exit code"
    elif code < 0:
        try:
            what = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            what = f"was killed by signal {-code}"
    else:
        what = f"exited {code}" + (f" {UNTESTABLE}" if code == 125 else "")
    line = last_line(stderr_path) if stderr_path is not None else ""
    return f"{what}: {line}" if line else what


class LongInteger(str):
    """An integer in a benchmark's JSON line with more digits than Python converts (4300 by
    default, `sys.set_int_max_str_digits`), kept as its text: parsing the line as a whole
    failed on it, and the trial was reported as having printed no JSON line at all."""


def parse_int(text: str) -> int | LongInteger:
    """`json.loads`'s `parse_int` for benchmark output: an int, or the too-long text."""
    try:
        return int(text)
    except ValueError:
        return LongInteger(text)


def as_number(value: object) -> float | None:
    """`value` as a measurement: a finite int or float (not a bool) of at most
    `MAX_MAGNITUDE`, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # a 401-digit integer: not a measurement, kept as metadata
        return None
    return number if abs(number) <= MAX_MAGNITUDE else None  # NaN compares False


def _what(value: object) -> str:
    """What a value that is not a metric was: `NaN`, `an empty list`, `not a number ("fast")`."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "infinite"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "too large a number"
    if isinstance(value, LongInteger):
        return f"too large a number (an integer of {len(value.lstrip('-'))} digits)"
    if value == []:
        return "an empty list"
    if isinstance(value, list):  # not samples, so one item is not a number
        bad = next(v for v in value if as_number(v) is None)
        if isinstance(bad, list):  # its own items may all be numbers: say what it is
            return f"a list holding a list ({shown(json.dumps(bad), 40)}), not numbers"
        return f"a list holding {_what(bad)}"
    return f"not a number ({shown(json.dumps(value), 60)})"


def no_metric(meta: Mapping[str, Any]) -> str:
    """Why a JSON line gave no metric: the first key that is not metadata and why its value
    is not one (`latency_ms was NaN`), or that there was none."""
    keys = [k for k in meta if not k.startswith("_")]
    if not keys:
        return "printed a JSON line with no metric in it"
    why = f"{shown(keys[0], 60)} was {_what(meta[keys[0]])}"
    more = f" (and {len(keys) - 1} more keys that are not numbers)" if len(keys) > 1 else ""
    return f"printed no numeric metric: {why}{more}"


class _Trial(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def meta(self) -> Mapping[str, Any]: ...

    @property
    def exit_code(self) -> int | None: ...


def noted(result: TrialResult, last_reason: str = "") -> TrialResult:
    """`result` with its reason (`last_reason`: that of its last process) and its attempts
    in the metadata the journal keeps, unless it is ok."""
    if result.ok:
        return result
    note: dict[str, Any] = {REASON_KEY: last_reason or result.reason}
    if result.attempts > 1:
        note[ATTEMPTS_KEY] = result.attempts
    return replace(result, meta={**result.meta, **note})


def trials_failed(trials: Sequence[_Trial]) -> str:
    """`2 of 2 trials failed, the last exited 1: ...` for journaled trials; "" if none failed."""
    failed = [t for t in trials if not t.ok]
    if not failed:
        return ""
    last = failed[-1]
    reason = str(last.meta.get(REASON_KEY) or "") or exited(last.exit_code)  # journaled before
    n = sum(_attempts(t) for t in failed)
    total = n + len(trials) - len(failed)
    if total == 1:
        return f"its one trial {reason}"
    return f"{n} of {total} trials failed, the last {reason}"


def _attempts(trial: _Trial) -> int:
    value = trial.meta.get(ATTEMPTS_KEY, 1)
    return value if isinstance(value, int) and value > 0 else 1


class _Measurer(Protocol):
    journal: Journal

    def env_key(self, commit: Commit) -> str: ...

    def trials(self, commit: Commit) -> Sequence[_Trial]: ...


def untestable_reason(measurer: _Measurer, commit: Commit) -> str:
    """Why `commit` could not be measured: its environment did not build (with the build
    log), or how its trials failed (`its one trial exited 125 (...): <its last stderr
    line>`); "" when nothing failed."""
    build_log = measurer.journal.failed_build(commit.sha, measurer.env_key(commit))
    if build_log is not None:
        return "its environment did not build" + (f" (log: {build_log})" if build_log else "")
    return trials_failed(measurer.trials(commit))


def endpoint_error(
    exc: EndpointUnmeasurable, measurer: _Measurer, refs: Mapping[str, str], run_dir: Path
) -> BisectorError:
    """The error of an endpoint that cannot be measured: which (`refs`: sha -> the ref the
    user gave), why (its build, or its last failed trial), where the logs are.

    An endpoint that lacks the metric, or measures it at 0, keeps its own message and hint
    (what to set), its ref named as well.
    """
    commit = exc.commit
    ref = refs.get(commit.sha, "")
    named = f"{shown(ref, 60)} ({commit.short})" if ref and not commit.sha.startswith(ref) else ""
    if not exc.untestable:
        subject = f"the {exc.side} endpoint {commit.short}"  # how core's messages and
        where = f"at {subject}"  # hints start
        message, hint = exc.message, exc.hint
        if named and message.startswith(subject):
            message = f"the {exc.side} endpoint {named}{message[len(subject) :]}"
        if named and hint is not None and hint.startswith(where):
            hint = f"at the {exc.side} endpoint {named}{hint[len(where) :]}"
        if (message, hint) == (exc.message, exc.hint):
            return exc
        return EndpointUnmeasurable(
            message, side=exc.side, commit=commit, untestable=False, hint=hint
        )
    build_log = measurer.journal.failed_build(commit.sha, measurer.env_key(commit))
    why = untestable_reason(measurer, commit)
    message = f"the {exc.side} endpoint {named or commit.short} could not be measured"
    logs = run_dir / commit.sha[:12]  # its trials' folder (`measure._trial_dir`)
    logs = logs if build_log is None and logs.is_dir() else run_dir
    hint = f"see the trial logs under {logs}; once the cause is fixed, the same command"
    return BisectorError(
        f"{message}: {why}" if why else message, hint=hint + " measures the endpoints again"
    )
