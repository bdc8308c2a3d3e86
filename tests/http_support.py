"""Pieces of the real HTTP servers the tests start on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@contextmanager
def serving(server: ThreadingHTTPServer, stop: threading.Event) -> Iterator[None]:
    """`server` answering on a thread while inside; then `stop` set (a dribbling handler
    ends) and the server shut and closed."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
