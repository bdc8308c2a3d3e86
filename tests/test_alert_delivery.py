"""Webhook delivery against a real HTTP server on 127.0.0.1: what counts as delivered, and
how long one attempt may take.

A redirect is not a delivery: urllib would follow a 302 with a GET without the body (an
SSO proxy's login page answers 200), so the alert was reported sent while no receiver
read it. And `alerts[].timeout` bounds the whole attempt, not each socket read: a
receiver that dribbles its answer cannot hold a rollback or a daemon cycle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from bisector.alerts import AlertMessage, send_alert
from bisector.config import Alert

from .http_support import QuietHandler, dribble, serving


class _Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.stop = threading.Event()
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                outer.requests.append(("GET", self.path))
                self.send_response(200)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"login")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append(("POST", self.path))
                if self.path.startswith("/redirect/"):
                    code = int(self.path.split("/")[2])
                    self.send_response(code)
                    self.send_header("Location", "/login")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                # /dribble: one byte of the answer every 0.3 s, each read well within the
                # timeout, the whole answer far beyond it.
                answer = (
                    b"HTTP/1.1 200 OK\r\nX-Pad: " + b"y" * 60 + b"\r\nContent-Length: 0\r\n\r\n"
                )
                dribble(self.wfile, answer, outer.stop, 0.3)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    with serving(r.server, r.stop):
        yield r


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_a_delivery_and_is_not_followed(receiver: _Receiver, code: int) -> None:
    out = send_alert(
        [Alert(webhook=f"{receiver.base}/redirect/{code}", timeout=2.0, retries=2)],
        AlertMessage("rollback failed", "health_check", "exit 1"),
        backoff_s=0.01,
    )
    assert not out[0].ok, out
    assert out[0].attempts == 1, out  # a retry would be redirected the same way
    assert out[0].detail == f"HTTP {code} redirect, not followed", out
    assert receiver.requests == [("POST", f"/redirect/{code}")]


def test_the_timeout_bounds_a_whole_attempt_against_a_dribbling_receiver(
    receiver: _Receiver,
) -> None:
    start = time.monotonic()
    out = send_alert(
        [Alert(webhook=f"{receiver.base}/dribble", timeout=1.0, retries=1)],
        AlertMessage("rollback failed", "health_check", "exit 1"),
        backoff_s=0.01,
    )
    took = time.monotonic() - start
    assert not out[0].ok and out[0].attempts == 2, out
    assert out[0].detail == "timed out after 1.0s", out
    assert took < 4.0, took  # two attempts of 1 s each, not 2 x 25 s of dribble
