"""Credentials inside URLs, scrubbed from any text that leaves the process.

`https://user:token@host/repo.git` (a `daemon.remote`, a webhook) must not reach a log
line, the `error:` line, the journal or an alert, whichever message quotes it: git's own
errors repeat the URL. Used by the logger, by `BisectorError` for every message and hint,
and by the alerts.
"""

from __future__ import annotations

import re

__all__ = ["scrub_text"]

# `scheme://userinfo@`: the userinfo (user, or user:password/token) is the secret. It may
# hold anything but `/`, whitespace and `@` (the last `@` before the host ends it).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def scrub_text(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`."""
    return _URL_USERINFO.sub(r"\1***@", text) if "@" in text else text
