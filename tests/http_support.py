"""Pieces of the real HTTP servers the tests start on 127.0.0.1."""

from __future__ import annotations

import threading
from io import BufferedIOBase


def dribble(out: BufferedIOBase, data: bytes, stop: threading.Event, pause: float) -> None:
    """Write `data` one byte every `pause` seconds until done or `stop` is set: each read
    of the client's is well within its timeout, the whole answer far beyond it."""
    for byte in data:
        if stop.wait(pause):
            return
        try:
            out.write(bytes([byte]))
            out.flush()
        except OSError:  # the client gave up: what the test wants
            return
