"""What a trial that raised on a Ray worker means to the driver.

Bisector's own errors raised on a worker (a `DockerError`: no daemon on that node, the base
image missing there) are problems the user can act on: the driver says them as such, with
their hint. Anything else raised there is a bug, or workers that run another bisector.
"""

from __future__ import annotations

from typing import Any

from bisector.core.types import Commit
from bisector.errors import BisectorError


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
