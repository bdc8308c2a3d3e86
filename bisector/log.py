"""structlog setup: readable console lines for humans, JSON lines with --log-json.

Logs go to stderr; stdout is reserved for `--json` documents. Secrets are scrubbed by
key name (anything like a URL, token or password) before rendering.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = ("url", "webhook", "token", "password", "secret", "authorization")


def _scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event[key] = "***"
    return event


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
