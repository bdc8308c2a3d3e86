"""One HTTP request whose timeout bounds the whole exchange, not each socket read.

urllib's `timeout` is a socket timeout: a server that sends one byte of its answer just
inside it, again and again, holds the caller for as long as it likes. Here the request
runs in a thread; when the time is up its socket is shut down (which wakes the blocked
read) and the caller gets `ExchangeTimeout`. Used by webhooks (a rollback, a guard
evaluation and a daemon cycle wait on them), by the guard's Prometheus queries and by
isolation's index version lookup.
"""

from __future__ import annotations

import base64
import http.client
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "ExchangeTimeout", "exchange", "split_userinfo"]


class ExchangeTimeout(Exception):
    """The request and its answer outlasted the timeout (its socket was shut down)."""


@dataclass(frozen=True)
class Answer:
    status: int  # any status: an HTTP error or a redirect not followed is an answer too
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx code


class _Recording:
    """A handler mixin that keeps the connections it opens, to shut them down on timeout."""

    conns: list[http.client.HTTPConnection]

    def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
        def connect(host: str, **args: Any) -> http.client.HTTPConnection:
            conn: http.client.HTTPConnection = http_class(host, **args)
            self.conns.append(conn)
            return conn

        return super().do_open(connect, req, **kwargs)  # type: ignore[misc]


class _HTTP(_Recording, urllib.request.HTTPHandler):
    pass


class _HTTPS(_Recording, urllib.request.HTTPSHandler):
    pass


def exchange(
    request: urllib.request.Request,
    timeout: float,
    *,
    follow_redirects: bool,
    max_body: int,
    max_error_body: int = 64 * 1024,
) -> Answer:
    """Send `request` and read at most `max_body` bytes of the answer within `timeout` s.

    Raises `ExchangeTimeout`, or what urllib raises for no answer (`URLError`, `OSError`,
    `ValueError` for a malformed URL); never `HTTPError`.
    """
    conns: list[http.client.HTTPConnection] = []
    handlers = (_HTTP(), _HTTPS())
    handlers[0].conns = handlers[1].conns = conns
    extra = () if follow_redirects else (_NoRedirect,)
    opener = urllib.request.build_opener(*extra, *handlers)
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            with opener.open(request, timeout=timeout) as response:
                outcome["answer"] = Answer(response.status, response.read(max_body))
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(max_error_body)
            except OSError:
                body = b""
            outcome["answer"] = Answer(exc.code, body)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, name="http-exchange", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        for conn in list(conns):
            if conn.sock is not None:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read
                except OSError:
                    pass
        thread.join(1.0)
        if "answer" not in outcome:
            raise ExchangeTimeout
    if "answer" in outcome:
        answer: Answer = outcome["answer"]
        return answer
    raise outcome["error"]


def split_userinfo(url: str) -> tuple[str, str | None]:
    """`url` without its `user:password@`, and those as a basic `Authorization` value
    (user and password percent-decoded); `(url, None)` for a URL without userinfo."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    token = base64.b64encode(pair.encode()).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), f"Basic {token}"
