"""Pieces of the real HTTP servers the tests start on 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
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


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (so a test server can answer without closing), no request log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        return None
