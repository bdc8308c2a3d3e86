"""Cooperative shutdown: SIGTERM sets an event; the cycle checks it between steps.

A bisection checks it before every trial (through the pipeline's progress callback), so
SIGTERM abandons the current step cleanly: every trial taken so far is in the journal
and the next cycle resumes the same run.
"""

from __future__ import annotations

import threading

STOP = threading.Event()


class Abandoned(Exception):
    """The cycle was asked to stop; raised at a step boundary, never mid-write."""


def check() -> None:
    if STOP.is_set():
        raise Abandoned("stop requested")
