"""structlog setup: readable console lines for humans, JSON lines with --log-json.

Logs go to stderr; stdout is reserved for `--json` documents. Secrets are scrubbed by
key name (anything like a URL, token or password) before rendering, and credentials
inside URLs (`https://user:token@host/...`, e.g. from `daemon.remote` in a git error) are
scrubbed from every string value, whatever its key, and from the rendered line (a
traceback quotes them too): the rule of bisector.plumbing.redact, which errors and
alerts apply as well.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from bisector.plumbing.redact import scrub_text

_SECRET_KEYS = ("url", "webhook", "token", "password", "secret", "authorization")


def scrub_value(value: Any, depth: int = 0) -> Any:
    """Strings, and strings inside lists, tuples and dicts, with URL credentials scrubbed."""
    if isinstance(value, str):
        return scrub_text(value)
    if depth > 20:  # a value nested this deep is not worth walking
        return value
    if isinstance(value, dict):
        return {k: scrub_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_value(v, depth + 1) for v in value)
    return value


def _scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event[key] = "***"
        elif key != "exc_info":
            event[key] = scrub_value(event[key])
    return event


def _scrub_rendered(_: Any, __: str, event: Any) -> Any:
    # After rendering: a traceback's text (exc_info) may quote a URL with its token.
    return scrub_text(event) if isinstance(event, str) else event


class _StderrLogger:
    """Writes to whatever `sys.stderr` is now (tests and the daemon may replace it)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    def __call__(self, *_args: Any) -> _StderrLogger:
        return _StderrLogger()


# No frame locals in logs: they would carry webhook URLs and tokens past the scrubber.
_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def configure(*, json_lines: bool = False, verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            _DICT_TRACEBACKS if json_lines else structlog.processors.format_exc_info,
            renderer,
            _scrub_rendered,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    # Used as a library (no CLI to configure it), structlog's default would print debug
    # lines to stdout, where `--json` documents go; default to ours (stderr, info).
    if not structlog.is_configured():
        configure()
    return structlog.get_logger(name)
