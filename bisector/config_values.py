"""The values inside `bisector.yaml`: durations, thresholds, argv, env, paths, schedules.

Parsers and checks the config models (`bisector.config`) run on single values; each
refuses what would silently disable something (a NaN timeout, an empty command, a
rollback target that is the repository) with a message that names the value.
"""

from __future__ import annotations

import math
import os
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from bisector.config_strict import HintedValueError, _short
from bisector.core.types import Threshold

DEFAULT_CONFIG_NAME = "bisector.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_DURATION_S = 366 * 24 * 3600.0


def parse_duration(value: object) -> float:
    """`30s`, `5m`, `1.5h`, `250ms` or a bare number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number with a unit, like 30s or 5m")
    try:
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        else:
            raise ValueError(f"not a duration: {_short(value)} (use e.g. 30s, 5m, 1h)")
    except OverflowError as exc:  # a 401-digit integer
        raise ValueError("a duration must be at most a year") from exc
    # NaN compares false with everything and infinity never expires: either would
    # silently switch the timeout off.
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION_S:
        raise ValueError("a duration must be at most a year")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^\d+(\.\d+)?(ms|s|m|h)?$"}),
]


def parse_threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    if isinstance(value, bool):
        raise ValueError("a threshold is a number or a percentage")
    try:
        if isinstance(value, int | float):
            t = Threshold(float(value), relative=False)
        elif isinstance(value, str) and value.strip().endswith("%"):
            try:
                t = Threshold(float(value.strip()[:-1]) / 100.0, relative=True)
            except ValueError as exc:
                raise ValueError(f"not a percentage: {_short(value)}") from exc
        elif isinstance(value, str):
            try:
                t = Threshold(float(value), relative=False)
            except ValueError as exc:
                raise ValueError(f"not a threshold: {_short(value)} (use e.g. 5% or 0.01)") from exc
        else:
            raise ValueError(f"not a threshold: {_short(value)}")
    except OverflowError as exc:
        raise ValueError("a threshold must be a finite number") from exc
    if not math.isfinite(t.value):  # NaN: no difference would ever exceed it
        raise ValueError("a threshold must be a finite number")
    if t.value < 0:
        raise ValueError("a threshold cannot be negative")
    return t


ThresholdField = Annotated[
    Threshold,
    BeforeValidator(parse_threshold),
    PlainSerializer(str),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^\d+(\.\d+)?%?$"}),
]


def _env_values(value: object) -> object:
    """Environment values are strings; YAML numbers and booleans are written as such."""
    if isinstance(value, dict):
        return {
            k: ("true" if v is True else "false" if v is False else str(v))
            if isinstance(v, int | float | bool)
            else v
            for k, v in value.items()
        }
    return value


def _check_env(env: dict[str, str]) -> dict[str, str]:
    # The OS refuses these only when the trial starts (exec fails with a ValueError),
    # after the endpoints were checked out; say so while reading the config instead.
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            raise ValueError(
                f"environment variable name {_short(key)} is empty or holds '=' or NUL"
            )
        if "\0" in value:
            raise ValueError(f"environment variable {key}: the value holds a NUL character")
    return env


def _check_argv(argv: list[str] | None) -> list[str] | None:
    if argv is None:
        return None
    if not argv or not argv[0].strip():
        raise ValueError("the command's first word (the program) is empty")
    if any("\0" in word for word in argv):
        raise ValueError("a word of the command holds a NUL character")
    return argv


EnvVars = Annotated[dict[str, str], BeforeValidator(_env_values), AfterValidator(_check_env)]
Argv = Annotated[list[str], AfterValidator(_check_argv)]


def check_webhook(url: str | None) -> str | None:
    """`daemon.alerts[].webhook`: an http(s) URL with a host, checked on load: one that is
    not would only fail when the alert is sent (after a failed health check, at 3 a.m.).
    The URL is a secret, so the error never quotes it."""
    if not url:  # null or "": no webhook, the alert is logged only
        return url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    why = (
        "it names no host"
        if parts.scheme in ("http", "https")
        else f"its scheme is {parts.scheme}"
        if "://" in url and parts.scheme.isalnum()
        else "it has no scheme (https://)"
    )
    raise HintedValueError(
        f"not an http(s) URL: {why} (the URL is a secret: not shown)",
        hint="write it as https://HOST/PATH, e.g. https://hooks.slack.com/services/...",
    )


STORE_HINT = (
    "name a folder for bisector's own files: the default `.bisector`, or one outside the repository"
)


def check_store(value: str) -> str:
    """`snapshots.store`: never the repository's own folder ('', '.') nor git's (`.git` or a
    path in it), where journal.sqlite, runs/ and worktrees/ would land in the working tree
    or among git's files. Absolute paths are checked again, resolved, by `load_config`."""
    norm = os.path.normpath(value) if value.strip() else "."
    if norm == ".":
        raise HintedValueError(f"{value!r} is the repository itself", STORE_HINT)
    if norm.split("/")[0].casefold() == ".git":  # casefold: .GIT is .git on macOS/Windows
        raise HintedValueError(f"{value!r} is git's own folder .git or a path in it", STORE_HINT)
    return value


def check_rollback_target(value: str | None) -> str | None:
    """Refuse '', '.' or a folder above the repository: a rollback would replace the repository,
    `.git` included, by a symlink (checked again, resolved, in rollback/target.py)."""
    norm = os.path.normpath(value) if value is not None and value.strip() else None
    if value is not None and (norm is None or norm == "/" or set(norm.split("/")) <= {".", ".."}):
        raise ValueError(
            f"{value!r} is the repository or a folder above it; name the live config folder"
        )
    return value


# A registry and repository path as `docker push` takes it, before the image's own name:
# `HOST[:PORT]/PATH`, lower-case path components (docker's reference grammar).
_REGISTRY = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$"
)


def check_registry(value: str | None) -> str | None:
    """`environment.docker.registry`: an image prefix, never a URL or a login. A scheme,
    a user name or password (`user:pw@`), whitespace or a leading '-' (an option to the
    docker CLI) is refused; credentials stay in docker's own login (`docker login`)."""
    if value is None:
        return None
    if "@" in value:  # not echoed: it may be a password
        raise ValueError(
            "the registry holds an '@' (a user name or password?): write HOST[:PORT]/PATH and "
            "log in with `docker login`"
        )
    if "://" in value:
        raise ValueError(
            f"{_short(value)} has a scheme; write HOST[:PORT]/PATH, e.g. 127.0.0.1:5000/bisector"
        )
    if (
        not value
        or value.startswith("-")
        or any(c.isspace() for c in value)
        or not _REGISTRY.match(value)
    ):
        raise ValueError(
            f"{_short(value)} is not a registry prefix HOST[:PORT]/PATH (no whitespace, no leading"
            " '-', lower-case path), e.g. 127.0.0.1:5000/bisector"
        )
    return value


def _check_cron(schedule: str) -> str:
    # A schedule the scheduler cannot read would only fail when the daemon starts (and
    # never under `--once`): check it wherever the config is read.
    from bisector.plumbing.crontab import crontab_trigger  # noqa: PLC0415 (apscheduler: only if a schedule is set)

    try:
        crontab_trigger(schedule)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f'not a crontab line ({exc}); e.g. "0 2 * * *"') from exc
    return schedule


class SchemaWithDefaults(GenerateJsonSchema):
    """Defaults as a user writes them: a list or map made by a factory (`snapshots.configs`)
    is shown, and a threshold is `5%`, not the dataclass it is parsed into."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()  # type: ignore[call-arg]
        else:
            value = super().get_default_value(schema)
        if value is NoDefault:
            return value
        return str(value) if isinstance(value, Threshold) else value
