"""The guard's Prometheus adapter against a real HTTP server on 127.0.0.1 that speaks the
query API: a Prometheus behind basic auth (credentials in `guard.prometheus`), and one
that answers byte by byte. (tests/test_guard_prometheus.py runs the real Prometheus.)

Before: `http://user:password@host:9090` was handed to urllib as it stood, which looked
the whole `user:password@host` up in DNS, so the guard was blind for good with
"Name or service not known"; and `guard.timeout` bounded each read, not the query.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from bisector.guard.prometheus import Blind, Data, Prometheus

from .http_support import QuietHandler, dribble, serving

USER, PASSWORD = "guard", "pr0m:p@ss"
ANSWER = json.dumps(
    {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.25"]}]},
    }
).encode()


class _Server:
    def __init__(self) -> None:
        self.stop = threading.Event()
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/slow/"):
                    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(ANSWER)}\r\n\r\n".encode()
                    dribble(self.wfile, head + ANSWER, outer.stop, 0.2)
                    return
                ok = self.headers.get("Authorization") == expected
                body = ANSWER if ok else b'{"status": "error", "error": "unauthorized"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    with serving(s.server, s.stop):
        yield s


def test_credentials_in_the_url_are_sent_as_basic_auth(server: _Server) -> None:
    url = f"http://{USER}:pr0m%3Ap%40ss@127.0.0.1:{server.port}"
    result = Prometheus(url, timeout_s=5).instant("up")
    assert isinstance(result, Data), result
    assert result.series[0].samples[0][1] == 0.25


def test_wrong_credentials_are_blind_without_the_password(server: _Server) -> None:
    url = f"http://{USER}:wrong-s3cret@127.0.0.1:{server.port}/"
    result = Prometheus(url, timeout_s=5).instant("up")
    assert isinstance(result, Blind) and result.reason == "HTTP 401 unauthorized", result
    assert "s3cret" not in result.reason


def test_the_timeout_bounds_the_whole_query(server: _Server) -> None:
    start = time.monotonic()
    result = Prometheus(f"http://127.0.0.1:{server.port}/slow", timeout_s=1.0).instant("up")
    assert isinstance(result, Blind) and "timed out after 1.0s" in result.reason, result
    assert time.monotonic() - start < 3.0
