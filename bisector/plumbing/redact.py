"""Credentials inside URLs, scrubbed from any text that leaves the process.

`https://user:token@host/repo.git` (a `daemon.remote`, a webhook) must not reach a log
line, the `error:` line, the journal or an alert, whichever message quotes it: git's own
errors repeat the URL. Nor must the value of an HTTP `Authorization:` (or
`Proxy-Authorization:`) header line, as `curl -v` prints it in a health check's output.
Used by the logger, by `BisectorError` for every message and hint, by the alerts and by
the rollback's health check output.
"""

from __future__ import annotations

import re

__all__ = ["scrub_text"]

# `scheme://userinfo@`: the userinfo (user, or user:password/token) is the secret. It may
# hold anything but `/`, whitespace and `@` (the last `@` before the host ends it).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
# `Authorization: Basic dXNlcjpwdw==`: the rest of the header's line is the secret.
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization:[ \t]*)[^\r\n]+")


def scrub_text(text: str) -> str:
    """`text` with the credentials of every URL in it, and the value of every
    `Authorization:` header line, replaced by `***`."""
    if "@" in text:
        text = _URL_USERINFO.sub(r"\1***@", text)
    if "authorization:" in text.lower():
        text = _AUTH_HEADER.sub(r"\1***", text)
    return text
