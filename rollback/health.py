"""The post-switch health check: an argv run without a shell, killed as a group on timeout.

Its run token (`BISECTOR_RUN_TOKEN` in its environment, inherited by all it starts) is
recorded in the intent before it starts: if bisector is killed during the check, the
check is orphaned, and the next start's recovery ends it by that token (`end_orphaned`),
which a reused pid never carries.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bisector.plumbing.proc import run_in_group, sweep_escaped
from bisector.plumbing.redact import scrub_text


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    reason: str  # "passed", "exit 3", "timed out after 2.0s", "cannot start: ..."
    returncode: int | None
    output_tail: str
    seconds: float


def run_health_check(
    argv: Sequence[str],
    *,
    cwd: Path,
    budget_s: float,
    env: Mapping[str, str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    token: str | None = None,
) -> HealthResult:
    """Run `argv` for at most `budget_s` seconds (monotonic clock); exit 0 is healthy.

    `token`: its run token, as recorded in the intent (`end_orphaned` after a crash).
    """
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        try:
            # stdout a file, not a pipe: a chatty check cannot block on a full pipe. Its own
            # process group: a timeout kills the children it started (a server probe, a
            # script) too, at once (no grace: the budget is the operator's).
            done = run_in_group(
                argv,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                timeout_s=budget_s,
                stdout=out,
                stderr=subprocess.STDOUT,
                grace_s=0.0,
                should_stop=should_stop,
                kill_strays=False,
                token=token,
            )
        except OSError as exc:
            return HealthResult(False, f"cannot start: {exc.strerror or exc}", None, "", 0.0)
        out.seek(0)
        # Shown on screen and in --json: a probe's output may quote a URL with its
        # password or a `curl -v` Authorization header. Scrubbed before it is cut, so a
        # URL is not cut from the scheme that makes it recognisable.
        tail = scrub_text(out.read()[-4000:].decode("utf-8", "replace"))[-2000:]
    rc = done.returncode
    if done.timed_out:
        reason = f"timed out after {budget_s:.1f}s"
    elif done.stopped:
        reason = "stopped by SIGTERM"
    else:
        reason = "passed" if rc == 0 else f"exit {rc}"
    return HealthResult(reason == "passed", reason, rc, tail, time.monotonic() - start)


def end_orphaned(token: str) -> None:
    """Kill what is left of the health check run with `token` by a rollback that was killed
    during it (the check and everything it started, also in a session of its own)."""
    # No grace, as at a timeout: the check's budget ran out with the rollback that ran it.
    sweep_escaped(token, 0.0, why="killing the health check of an interrupted rollback")
