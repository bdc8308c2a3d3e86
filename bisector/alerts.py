"""Alerts: a Slack-compatible webhook POST (stdlib urllib) plus a structured log event.

Shared by rollback and the daemon. The webhook URL is a secret (Slack's carries the
token in its path), so it is never logged or put in an error message: events name the
alert by its index in `daemon.alerts` only. Credentials in the URL
(`https://user:token@host/hook`) are sent as HTTP basic auth: urllib cannot open a URL
with userinfo, so they are taken out of it and put in an `Authorization` header.

A redirect is not followed: urllib would turn the POST into a GET without the body (an
SSO proxy's login page then answers 200, and the alert would count as sent), so a 3xx is
a failed delivery. `timeout` bounds a whole attempt, not each socket read: an attempt
runs in a thread whose socket is shut down when the time is up, so a receiver that
dribbles its answer cannot hold a rollback, a guard evaluation or a daemon cycle.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bisector.config import Alert
from bisector.log import get_logger
from bisector.plumbing.escape import slack_text
from bisector.plumbing.httpbound import ExchangeTimeout, exchange, split_userinfo
from bisector.plumbing.redact import scrub_text

log = get_logger("bisector.alerts")


@dataclass(frozen=True)
class AlertMessage:
    text: str  # the one line a human reads in the channel
    step: str  # what was being done: "health_check", "rollback", "bisect"
    reason: str
    files: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, object]:
        """Slack reads `text`; other receivers get the fields as plain JSON.

        Every field may quote a commit subject, a config key or a git error: URL
        credentials are scrubbed from all of them, and `text` is escaped the way Slack
        asks (no `<!channel>` or disguised link from a commit reaches the channel).
        """
        return {
            "text": slack_text(scrub_text(self.text)),
            "step": self.step,
            "files": [scrub_text(f) for f in self.files],
            "reason": scrub_text(self.reason),
            **{k: scrub_text(v) for k, v in self.extra.items()},
        }

    def record(self) -> dict[str, Any]:
        """The message as a JSON object, to keep in a journal until a webhook takes it."""
        return {
            "text": self.text,
            "step": self.step,
            "reason": self.reason,
            "files": list(self.files),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_record(cls, m: Mapping[str, Any], *, step: str) -> AlertMessage:
        """A message kept by `record`; `step` where the record has none (an older one)."""
        return cls(
            text=m["text"],
            step=m.get("step", step),
            reason=m["reason"],
            files=tuple(m.get("files") or ()),
            extra=dict(m.get("extra") or {}),
        )


@dataclass(frozen=True)
class Delivery:
    index: int  # position in daemon.alerts
    ok: bool
    attempts: int
    detail: str  # "HTTP 200", "HTTPError 500", "URLError", "no webhook"


Poster = Callable[[str, bytes, float], int]


def _post(url: str, body: bytes, timeout: float) -> int:
    url, authorization = split_userinfo(url)
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    if authorization is not None:
        request.add_unredirected_header("Authorization", authorization)
    return exchange(request, timeout, follow_redirects=False, max_body=64 * 1024).status


def _check_scheme(url: str) -> bool:
    # urllib would also open file:// and ftp:// URLs; a webhook is http(s) only.
    return urllib.parse.urlsplit(url).scheme in ("http", "https")


def send_alert(
    alerts: Sequence[Alert],
    message: AlertMessage,
    *,
    post: Poster = _post,
    backoff_s: float = 0.2,
) -> list[Delivery]:
    """Log the alert, then POST it to every configured webhook (timeout and retries each)."""
    log.warning(
        "alert",
        text=message.text,
        step=message.step,
        reason=message.reason,
        files=list(message.files),
    )
    body = json.dumps(message.body()).encode()
    deliveries: list[Delivery] = []
    for index, alert in enumerate(alerts):
        if not alert.webhook:
            deliveries.append(Delivery(index, False, 0, "no webhook"))
            continue
        if not _check_scheme(alert.webhook):
            deliveries.append(Delivery(index, False, 0, "webhook is not http(s)"))
            log.error("alert.rejected", alert=index, detail="webhook is not http(s)")
            continue
        detail = ""
        attempts = 0
        ok = False
        for attempt in range(alert.retries + 1):
            attempts = attempt + 1
            try:
                status = post(alert.webhook, body, alert.timeout)
                ok, detail = 200 <= status < 300, f"HTTP {status}"
                if 300 <= status < 400:
                    detail = f"HTTP {status} redirect, not followed"
                elif status >= 400:
                    detail = f"HTTPError {status}"
            except urllib.error.HTTPError as exc:
                # Only the status: the exception's str may carry the URL.
                ok, detail = False, f"HTTPError {exc.code}"
            except (ExchangeTimeout, TimeoutError):
                ok, detail = False, f"timed out after {alert.timeout:.1f}s"
            except urllib.error.URLError as exc:
                timed_out = isinstance(exc.reason, TimeoutError)
                ok = False
                detail = f"timed out after {alert.timeout:.1f}s" if timed_out else "URLError"
            except (OSError, ValueError) as exc:
                ok, detail = False, type(exc).__name__
            if (
                ok
                or "redirect" in detail
                or (detail.startswith("HTTPError 4") and detail != "HTTPError 429")
            ):
                break  # success, or an answer a retry will not change
            if attempt < alert.retries:
                time.sleep(backoff_s * (2**attempt))
        deliveries.append(Delivery(index, ok, attempts, detail))
        (log.info if ok else log.error)(
            "alert.delivery", alert=index, ok=ok, attempts=attempts, detail=detail
        )
    return deliveries


def delivered(deliveries: Sequence[Delivery]) -> bool:
    """Whether a webhook took the alert, or none was tried (no webhook configured: the log
    line is the alert); False when every webhook tried failed, after its retries."""
    tried = [d for d in deliveries if d.attempts]
    return not tried or any(d.ok for d in tried)
