"""Trial tasks that raise what Ray cannot send back to the driver, run in place of
`ray_task.run_trial_task` by the tests of `executors.task_errors`; they reach the workers
with bisector's package. Each notes its run in `spec["env"]["TRIAL_LOG"]` first."""

from __future__ import annotations

import tarfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn


def _note(spec: Mapping[str, Any]) -> None:
    with Path(spec["env"]["TRIAL_LOG"]).open("a") as log:
        log.write("ran\n")


def undecodable(spec: Mapping[str, Any], archive: bytes) -> NoReturn:  # noqa: ARG001
    """Raises what the worker pickles and the driver cannot unpickle: tar's filter errors
    take (member, path) but keep only their message as their `args`."""
    _note(spec)
    raise tarfile.OutsideDestinationError(tarfile.TarInfo("x"), "/elsewhere/x")


def holding_a_lock(spec: Mapping[str, Any], archive: bytes) -> NoReturn:  # noqa: ARG001
    """Raises what the worker cannot pickle: an exception that holds a lock."""
    _note(spec)
    exc = RuntimeError("the model server kept its lock")
    exc.lock = threading.Lock()  # type: ignore[attr-defined]
    raise exc
