"""Pieces of the real HTTP servers the tests start on 127.0.0.1."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from typing import Any


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


@contextmanager
def files_behind_basic_auth(
    folder: Path, user: str, password: str, on_request: Callable[[], object] = lambda: None
) -> Iterator[tuple[str, list[str | None]]]:
    """`folder`'s files over http on 127.0.0.1, to requests with basic auth `user:password`
    only (others get 401). Yields the base URL with the credentials in it and the
    `Authorization` value of each request, as it arrives; `on_request` runs while each
    request waits for its answer."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    seen: list[str | None] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *_args: object) -> None:
            return None

        def _allowed(self) -> bool:
            seen.append(self.headers.get("Authorization"))
            on_request()
            if seen[-1] == expected:
                return True
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def do_GET(self) -> None:
            if self._allowed():
                super().do_GET()

        def do_HEAD(self) -> None:
            if self._allowed():
                super().do_HEAD()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serving(server, threading.Event()):
        yield f"http://{user}:{password}@127.0.0.1:{server.server_address[1]}", seen
