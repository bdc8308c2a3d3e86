"""One trial of the benchmark protocol (shared/DESIGN.md, "Benchmark protocol").

A trial runs the benchmark's argv without a shell, in the checkout, in its own process
group (`bisector.plumbing.proc.run_in_group`). On timeout the whole group is killed,
grandchildren included: SIGTERM, a short grace, then SIGKILL. The group is also cleaned
up after a normal exit, so a stray background process cannot disturb the next trial's
timings.
stdout and stderr go straight to files (`trial-<n>.out` / `.err`) rather than pipes, so a
grandchild that keeps a pipe open cannot hang us and every log is kept.

Outcome: exit 0 with a JSON metrics line → OK; exit 125 → SKIP (untestable, as in
`git bisect run`); anything else → FAILED. `TrialRunner.measure_once` retries a failed
trial once and then reports SKIP with both logs kept.

A process that leaves the group with `setsid()` (a benchmark that daemonizes a server) is
still found and killed after the trial (`run_in_group`: a token in its environment, and
bisector as the subreaper of its orphans); the docker builder's container holds it anyway.

A `BuiltEnv` with a `launcher` (the docker builder's `ContainerTrial`) runs its trials
through it instead of `run_trial`, and so does `benchmark.preload`'s fork server
(`bisector.preload`) for a host environment; the outcome is classified the same way
(`classify`).

Output is bounded: only the last `STDOUT_PARSE_BYTES` (1 MiB) of stdout are searched for
the JSON line, and when a trial ends each log keeps its first and last `LOG_KEEP_BYTES`
(1 MiB each) with a line saying how much of the middle was cut, so a chatty benchmark
cannot fill the store trial after trial.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bisector.config import Benchmark
from bisector.engine import trialreason
from bisector.log import get_logger
from bisector.plumbing.proc import (
    DEFAULT_GRACE_S as DEFAULT_GRACE_S,  # re-exported for the builders
)
from bisector.plumbing.proc import run_in_group
from bisector.ports import BuiltEnv, TrialLauncher, TrialResult, TrialStatus

log = get_logger(__name__)

SKIP_EXIT_CODE = 125
_TRIAL_FILE = re.compile(r"^trial-(\d+)\.(?:out|err)$")
STDOUT_PARSE_BYTES = 1 << 20
LOG_KEEP_BYTES = 1 << 20


def read_tail(path: Path, limit: int = STDOUT_PARSE_BYTES) -> tuple[str, bool]:
    """The last `limit` bytes of a file as text, and whether anything before them was left out."""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - limit))
        data = f.read(limit)
    return data.decode("utf-8", errors="replace"), size > limit


def cap_log(path: Path, keep: int = LOG_KEEP_BYTES) -> int:
    """Keep the first and last `keep` bytes of a log, with a line in between saying what was
    cut; how many bytes were cut (0: the log was small enough)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    cut = size - 2 * keep
    if cut <= 0:
        return 0
    with path.open("r+b") as f:
        f.seek(size - keep)
        tail = f.read(keep)
        f.seek(keep)
        f.write(f"\n[bisector: {cut} bytes cut from the middle of this log]\n".encode())
        f.write(tail)
        f.truncate()
    return cut


MAX_META_DEPTH = 32  # metadata deeper than this is replaced: it is journaled and rendered


def _depth(value: object) -> int:
    """Nesting depth of a JSON value, without recursion (the value may be thousands deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            level += 1
            if level > MAX_META_DEPTH:
                return level
            deepest = max(deepest, level)
            stack.extend(
                (child, level) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


def _as_samples(value: object) -> tuple[float, ...] | None:
    """A number or a non-empty list of numbers; anything else is not a metric."""
    single = trialreason.as_number(value)
    if single is not None:
        return (single,)
    if isinstance(value, list) and value:
        numbers = [trialreason.as_number(v) for v in value]
        if all(n is not None for n in numbers):
            return tuple(n for n in numbers if n is not None)
    return None


def parse_output(stdout: str) -> tuple[dict[str, tuple[float, ...]], dict[str, Any]] | None:
    """Metrics and metadata from the last stdout line that parses as a JSON object.

    Keys starting with `_` are metadata (e.g. `_gpu`). Other keys whose value is not a
    finite number or a non-empty list of finite numbers are kept as metadata too, so
    nothing the benchmark said is lost, but they never become samples. None when no line
    is a JSON object. A line may start with a byte order mark.
    """
    for line in reversed(stdout.splitlines()):
        text = line.strip().removeprefix("\ufeff")  # a UTF-8 BOM: Windows tools print one
        if not text.startswith("{"):
            continue
        try:
            data = json.loads(text, parse_int=trialreason.parse_int)  # 5000 digits: a value
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            continue
        if not isinstance(data, dict):
            continue
        metrics: dict[str, tuple[float, ...]] = {}
        meta: dict[str, Any] = {}
        for key, value in data.items():
            samples = None if key.startswith("_") else _as_samples(value)
            if samples is None:
                meta[key] = (
                    value if _depth(value) <= MAX_META_DEPTH else "(nested too deep; not kept)"
                )
            else:
                metrics[key] = samples
        return metrics, meta
    return None


def run_trial(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    stdout_path: Path,
    stderr_path: Path,
    grace_s: float = DEFAULT_GRACE_S,
) -> TrialResult:
    """Run the benchmark once and classify the outcome (no retry)."""
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    # Only names: values may hold tokens.
    log.debug("trial start", argv=list(argv), cwd=str(cwd), env_keys=sorted(env))
    start = time.monotonic()
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        try:
            # The group is killed on timeout, on Ctrl-C, and after a normal exit (stray children).
            done = run_in_group(
                argv, cwd=cwd, env=env, timeout_s=timeout_s, stdout=out, stderr=err, grace_s=grace_s
            )
        except OSError as exc:
            err.write(f"bisector: cannot start {argv[0]!r}: {exc}\n".encode())
            return TrialResult.failed_to_launch(
                time.monotonic() - start,
                stdout_path,
                stderr_path,
                f"could not start {argv[0]!r}: {exc.strerror}",
            )
    duration = time.monotonic() - start
    return classify(
        None if done.timed_out else done.returncode,
        timed_out=done.timed_out,
        timeout_s=timeout_s,
        duration_s=duration,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
    )


def _metrics_on(path: Path) -> bool:
    """Whether the log's last JSON object line holds a numeric metric."""
    try:
        parsed = parse_output(read_tail(path)[0])
    except OSError:
        return False
    return parsed is not None and bool(parsed[0])


def classify(
    code: int | None,
    *,
    timed_out: bool,
    timeout_s: float,
    duration_s: float,
    stdout_path: Path,
    stderr_path: Path,
) -> TrialResult:
    """The outcome of a finished trial (a process or a container) from its exit and stdout.

    Both logs are capped here (`cap_log`): every trial, whatever ran it, ends through this.
    """
    duration = duration_s
    for path in (stdout_path, stderr_path):
        cap_log(path)

    def result(
        status: TrialStatus,
        reason: str = "",
        metrics: dict[str, tuple[float, ...]] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> TrialResult:
        return TrialResult(
            status,
            metrics or {},
            meta or {},
            code,
            duration,
            stdout_path,
            stderr_path,
            reason=reason,
            timed_out=timed_out,
        )

    # Each reason reads after "the last" (`trialreason`): "exited 1: RuntimeError: boom".
    if timed_out:
        return result(TrialStatus.FAILED, f"timed out after {timeout_s:g}s")
    if code is None or code != 0:
        status = TrialStatus.SKIP if code == SKIP_EXIT_CODE else TrialStatus.FAILED
        return result(status, trialreason.exited(code, stderr_path))
    stdout, cut = read_tail(stdout_path)
    parsed = parse_output(stdout)
    if parsed is None:
        if cut:
            return result(
                TrialStatus.FAILED,
                f"printed no JSON line (only its last {STDOUT_PARSE_BYTES >> 20} MiB are read)",
            )
        if _metrics_on(stderr_path):  # run by hand, both streams share the terminal
            return result(
                TrialStatus.FAILED,
                "printed no JSON line on stdout, but one on stderr (the result goes on stdout)",
            )
        return result(TrialStatus.FAILED, "printed no JSON line")
    metrics, meta = parsed
    if not metrics:
        return result(TrialStatus.FAILED, trialreason.no_metric(meta), meta=meta)
    return result(TrialStatus.OK, metrics=metrics, meta=meta)


class TrialRunner:
    """Numbers trials in one run folder and applies the retry rule.

    Numbering continues after the highest `trial-<n>` already in the folder, so a resumed
    run never overwrites the logs of an earlier attempt. `before_trial` runs before each
    trial, the retry included (the measurer's: put back the checkout's tracked files).
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        timeout_s: float,
        grace_s: float = DEFAULT_GRACE_S,
        before_trial: Callable[[], None] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.before_trial = before_trial
        self._lock = threading.Lock()
        run_dir.mkdir(parents=True, exist_ok=True)
        found = [int(m.group(1)) for p in run_dir.iterdir() if (m := _TRIAL_FILE.match(p.name))]
        self._next = max(found, default=0) + 1

    def _take_number(self) -> int:
        with self._lock:
            n = self._next
            self._next += 1
            return n

    def trial(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        launcher: TrialLauncher | None = None,
    ) -> TrialResult:
        """One trial, no retry: a host process, or `launcher`'s (e.g. a container)."""
        if self.before_trial is not None:
            self.before_trial()
        n = self._take_number()
        return (launcher or run_trial)(
            argv,
            cwd=cwd,
            env=env,
            timeout_s=self.timeout_s,
            grace_s=self.grace_s,
            stdout_path=self.run_dir / f"trial-{n}.out",
            stderr_path=self.run_dir / f"trial-{n}.err",
        )

    def measure_in(
        self, built: BuiltEnv, benchmark: Benchmark, *, preload: TrialLauncher | None = None
    ) -> TrialResult:
        """`measure_once` of the configured benchmark in a built environment.

        The environment is ours, then the builder's variables, then `benchmark.env`.
        `preload` (`benchmark.preload`'s fork server) launches the trials of a host
        environment; the builder's own launcher (a container) wins over it.
        """
        return self.measure_once(
            built.command(benchmark.command),
            cwd=built.checkout,
            env=built.environ(benchmark.env),
            launcher=built.launcher or preload,
        )

    def measure_once(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        launcher: TrialLauncher | None = None,
    ) -> TrialResult:
        """One measurement: a failed trial is retried once, a second failure is a SKIP.

        One that is not ok carries its reason in its metadata (`trialreason.noted`).
        """
        first = self.trial(argv, cwd=cwd, env=env, launcher=launcher)
        if first.status is not TrialStatus.FAILED:
            return trialreason.noted(first)
        log.info("trial failed, retrying once", reason=first.reason, log=str(first.stderr_path))
        second = self.trial(argv, cwd=cwd, env=env, launcher=launcher)
        if second.status is not TrialStatus.FAILED:
            return trialreason.noted(_with_history(second, first))
        log.warning(
            "trial failed twice: candidate untestable",
            reason=second.reason,
            log=str(second.stderr_path),
        )
        skipped = TrialResult(
            TrialStatus.SKIP,
            {},
            second.meta,
            second.exit_code,
            second.duration_s,
            second.stdout_path,
            second.stderr_path,
            reason=f"failed twice: {first.reason}; then {second.reason}",
            timed_out=second.timed_out,
        )
        return trialreason.noted(_with_history(skipped, first), second.reason)


def _with_history(result: TrialResult, earlier: TrialResult) -> TrialResult:
    return replace(result, attempts=2, earlier=(earlier,))
