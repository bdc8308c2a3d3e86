"""Whole lines on stderr: progress, results and logs from any thread never mix inside a line.

The CLI's progress (a Rich console), its results and structlog's lines all write to
`sys.stderr`, some from background threads (environments built ahead, the daemon's
workers), and a writer may send one line in pieces (a traceback, a wrapped table). For
the CLI's lifetime `sys.stderr` is a `WholeLines`: each thread's text is held until its
line ends, then written in one call under one lock.
"""

from __future__ import annotations

import threading
from typing import Any, TextIO


class WholeLines:
    """A stderr that writes each thread's output whole lines at a time, one thread at a time.

    A partial line is written when its thread flushes (a prompt must show). Everything
    else (`fileno`, `isatty`, `encoding`) is the wrapped stream's, so Rich still sees a
    terminal where there is one and child processes inherit the real descriptor.
    """

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self._lock = threading.RLock()  # a signal handler that logs may run inside a write
        self._pending = threading.local()

    def write(self, text: str) -> int:
        held: str = getattr(self._pending, "text", "") + text
        lines, newline, rest = held.rpartition("\n")
        if newline:
            with self._lock:
                self.target.write(lines + newline)
                self.target.flush()
        self._pending.text = rest
        return len(text)

    def flush(self) -> None:
        rest: str = getattr(self._pending, "text", "")
        self._pending.text = ""
        with self._lock:
            if rest:
                self.target.write(rest)
            self.target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)
