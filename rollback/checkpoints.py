"""Named points of an apply: where tests inject faults and where SIGTERM is honoured.

Every step that changes the disk calls `point(name)` right after it. That gives one seam
for three things:

* `BISECTOR_FAULT_POINT=<name>` kills the process with SIGKILL at that point (the
  fault-injection tests run the apply in a subprocess and restart it);
* `BISECTOR_FAULT_AFTER=<n>` kills it at the n-th point, whatever its name (randomized
  kill tests);
* a SIGTERM received during the apply only sets a flag; the next point raises
  `ApplyInterrupted`, so the apply unwinds between two whole steps, never inside one.

`set_hook` installs an in-process hook (tests use it to raise `OSError(ENOSPC)` at the
staging write, or to count points).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from bisector.errors import RollbackError

Hook = Callable[[str], None]

# Names of the points, in the order an apply passes them (staging ones repeat per file).
POINTS = (
    "intent_written",
    "staging_write",  # before each staged file is written (ENOSPC / EACCES land here)
    "staged_file",
    "staged",
    "set_ready",
    "link_created",
    "displaced",  # only on the first switch of a real folder without RENAME_EXCHANGE
    "switched",
    "health_checked",
    "undo_intent_written",
    "undo_switched",
    "live_recorded",
    "done",
)

_hook: Hook | None = None
_count = 0
_terminated = threading.Event()
_shield_depth = 0


class ApplyInterrupted(RollbackError):
    """SIGTERM arrived during an apply; it was stopped between two steps."""


def set_hook(hook: Hook | None) -> Hook | None:
    """Install `hook` (called with each point's name); returns the previous one."""
    global _hook
    previous, _hook = _hook, hook
    return previous


def point(name: str) -> None:
    """Pass the named point: maybe die (fault injection), maybe stop (SIGTERM)."""
    global _count
    _count += 1
    if os.environ.get("BISECTOR_FAULT_POINT") == name or os.environ.get(
        "BISECTOR_FAULT_AFTER"
    ) == str(_count):
        os.kill(os.getpid(), signal.SIGKILL)
    if _hook is not None:
        _hook(name)
    if _terminated.is_set() and _shield_depth == 0:
        raise ApplyInterrupted(
            f"stopped by SIGTERM after step {name!r}",
            hint="the live set was left whole; see `bisector status`",
        )


def terminated() -> bool:
    return _terminated.is_set()


@contextmanager
def shielded() -> Iterator[None]:
    """Steps that must run to the end once begun (an undo, a cleanup) ignore SIGTERM."""
    global _shield_depth
    _shield_depth += 1
    try:
        yield
    finally:
        _shield_depth -= 1


@contextmanager
def sigterm_stops_between_steps() -> Iterator[None]:
    """While active, SIGTERM sets a flag read at the next point instead of killing us."""
    _terminated.clear()
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may install signal handlers (the daemon may call us from a
        # worker); there the daemon's own shutdown path applies.
        yield
        return

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        _terminated.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _terminated.clear()
