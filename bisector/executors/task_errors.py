"""What a trial task's result means to the driver: its outcome, an error, or a lost worker.

Bisector's own errors raised on a worker (a `DockerError`: no daemon on that node, the base
image missing there) are problems the user can act on: the driver says them as such, with
their hint. Anything else raised there is a bug, or workers that run another bisector.

An error Ray cannot send back arrives as its text only: an exception the worker cannot
pickle (one holding a lock: a `RayTaskError` whose cause is Ray's plain `RayError`), or one
the driver cannot unpickle (a class whose constructor takes other arguments than its
`args`, like tar's filter errors; a class only the worker can import: an
`UnserializableException`). It fails that trial, with the error's last line as the reason,
as a benchmark that failed would. It is not a worker lost: Ray's other errors (a killed
worker, a lost node) mean the trial is to be sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray
import ray.exceptions

from bisector.core.types import Commit
from bisector.engine.trialreason import shown
from bisector.errors import BisectorError
from bisector.ports import TrialStatus


@dataclass(frozen=True)
class Lost:
    """The trial's worker (or its node) died: Ray's error, in words."""

    error: str


def landed(ref: Any, commit: Commit) -> dict[str, Any] | Lost:
    """What the trial task of `ref` (of `commit`) returned (`ray_task.run_trial_task`), an
    error Ray could not send back as a failed trial (`unsent`), or `Lost`.

    :raises BisectorError: any other error raised on the worker (`task_failed`).
    """
    try:
        out: dict[str, Any] = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if type(exc.cause) is ray.exceptions.RayError:  # Ray's stand-in for an unpicklable one
            return unsent(exc.traceback_str)
        raise task_failed(exc, commit) from None
    except ray.exceptions.UnserializableException as exc:
        return unsent(str(exc))
    except ray.exceptions.RayError as exc:
        return Lost(str(exc))
    return out


def unsent(trace: str) -> dict[str, Any]:
    """A failed trial whose reason is the last exception of the worker's `trace` (what
    follows its last indented frame line), on one line."""
    lines = trace.rstrip().split("\n")
    frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
    error = shown(" ".join(lines[frames[-1] + 1 :] if frames else lines[-1:]))
    return {
        "build_failed": False,
        "status": TrialStatus.FAILED.value,
        "reason": f"raised on its worker: {error or 'an error Ray could not send back'}",
    }


def task_failed(exc: Any, commit: Commit) -> BisectorError:
    """The driver's error for `exc` (a `ray.exceptions.RayTaskError`) of a trial of `commit`."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BisectorError):
        return BisectorError(
            f"a Ray worker could not run a trial of {commit.short}: {cause.message}",
            hint=cause.hint,
        )
    return BisectorError(
        f"a Ray worker failed to run a trial of {commit.short}: {exc}",
        hint="check that the workers run the same bisector and Python version",
    )
