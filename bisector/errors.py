"""The one root of every error bisector raises on purpose.

Adapters turn library errors into a subclass of `BisectorError` at their boundary
(`raise ... from exc`), so the CLI and the daemon catch exactly one type. Anything
else reaching the CLI is a bug (exit 1).
"""

from __future__ import annotations

from pathlib import Path

from bisector.plumbing.redact import scrub_text


class BisectorError(Exception):
    """A problem the user can act on: shown as one `error:` line and an optional `hint:`."""

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # Scrubbed here, once: a message quoting a remote's URL (git repeats it) goes on
        # to the `error:` line, logs, the journal and alerts.
        message = scrub_text(message)
        super().__init__(message)
        self.message = message
        self.hint = scrub_text(hint) if hint is not None else None

    def __str__(self) -> str:
        return self.message


class ConfigError(BisectorError):
    """bisector.yaml is missing, malformed or invalid."""


class RefError(BisectorError):
    """A git ref is unsafe, unknown, or the endpoints are not ordered."""


class GitError(BisectorError):
    """A git operation failed."""


class StoreError(BisectorError):
    """The snapshot store or the journal is unreadable, tampered or inconsistent."""


class BuildError(BisectorError):
    """An environment could not be built for a candidate (the candidate is untestable).

    `log_path` names the kept build log, when there is one.
    """

    def __init__(
        self, message: str, *, hint: str | None = None, log_path: Path | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.log_path = log_path


class RollbackError(BisectorError):
    """A rollback was refused or failed."""


class DockerError(BisectorError):
    """The Docker daemon is unreachable or refused us, or the base image is unavailable."""
