"""The values inside `bisector.yaml`: durations, thresholds, argv, env, paths, schedules.

Parsers and checks the config models (`bisector.config`) run on single values; each
refuses what would silently disable something (a NaN timeout, an empty command, a
rollback target that is the repository) with a message that names the value.
"""

from __future__ import annotations

import math
import os
import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

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


def _short(value: object) -> str:
    """A value in an error as YAML writes it (`null`, `true`, `'text'`, `2.5`, `a list`),
    cut to a line: error messages echo what the user wrote, not megabytes of it."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, Mapping | list):  # not Python's `{'zz': 1}`
        return "a mapping" if isinstance(value, Mapping) else "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


_INT_ERRORS = frozenset({"int_parsing", "int_from_float", "int_type", "int_parsing_size"})


def whole_number_error(err: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """pydantic's word for a value that is not an int ("unable to parse string as an
    integer") as what the key needs (`not_a_number`); None for other errors."""
    if err["type"] not in _INT_ERRORS:
        return None
    return not_a_number(err.get("input"), whole=True)


_YAML_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


def not_a_number(
    value: object, *, whole: bool, choices: tuple[str, ...] = ()
) -> tuple[str, str | None]:
    """What a key that takes a (whole) number says of `value`, and how to write it: text
    that YAML would read as a number unquoted (`"9464"`) is to lose its quotes, and text
    it reads as a string however written (`1e9`: an exponent without a dot) is to be
    written in digits."""
    need = "a whole number" if whole else "a number"
    if choices:  # `gpus`: all, none or a whole number
        need = ", ".join((*choices[:-1], f"{choices[-1]} or {need}"))
    message = f"must be {need}, not {_short(value)}"
    if not isinstance(value, str):
        return message, None
    try:
        number = float(value)
    except ValueError:
        return message, None
    if not math.isfinite(number) or (whole and not number.is_integer()):
        return message, None
    written = value.strip()
    # What YAML makes of it unquoted: a number means the quotes made it text.
    unquoted = yaml.resolver.Resolver().resolve(yaml.ScalarNode, written, (True, False))  # type: ignore[no-untyped-call]
    if unquoted in _YAML_NUMBER_TAGS:
        return message, f"in quotes {written} is text: write it without quotes"
    digits = str(int(number)) if number.is_integer() else repr(number)
    if "e" in digits:  # 1e-09: YAML would read this as text too
        return message, None
    return message, f"YAML reads {written} as text: write it in digits ({digits})"


#: pydantic's wrong-type errors, as what the key takes ("Input should be a valid
#: dictionary or instance of Rollback" named a Python class).
_TYPE_ERRORS = {
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "float_type": "a number",
    "float_parsing": "a number",
}


def type_error(err: Mapping[str, Any]) -> str | None:
    """The message of a value of the wrong type (`must be a list, not 5`), else None."""
    need = _TYPE_ERRORS.get(err["type"])
    if err["type"] in ("literal_error", "enum"):  # one of the choices: "'report' or 'rollback'"
        need = err.get("ctx", {}).get("expected")
    return None if need is None else f"must be {need}, not {_short(err.get('input'))}"


def number_input(value: object, annotation: Any) -> object:
    """`value` if it may stand for the number `annotation` takes (an int or float, maybe in
    a union with None or a Literal), else a `ValueError` saying what the key takes.

    pydantic's lax mode would read YAML's `true` as 1, the text "9464" as 9464 and 2.5 as
    the choice it fails last; docs/config.md promises a number key refuses them. A whole
    float (`3.0`) is a whole number and passes (pydantic makes it 3).
    """
    union = get_origin(annotation) in (Union, types.UnionType)
    members = get_args(annotation) if union else (annotation,)
    if int not in members and float not in members:
        return value
    whole = int in members
    choices = tuple(c for m in members if get_origin(m) is Literal for c in get_args(m))
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    number = isinstance(value, int) or (
        isinstance(value, float) and (not whole or value.is_integer())
    )
    # Anything else is said here, once: pydantic would list what each member of a union
    # (`gpus`: a choice or an int) refuses, under keys such as `gpus.literal['all','none']`.
    if not (number or value in choices or (value is None and type(None) in members)):
        raise HintedValueError(*not_a_number(value, whole=whole, choices=choices))
    return value


#: A number inside a container (`resources_per_trial`'s values), checked as `Strict` checks
#: a number field.
Number = Annotated[float, BeforeValidator(lambda value: number_input(value, float))]


class HintedValueError(ValueError):
    """A refused value with a `hint:` for the person fixing it (`parse_config` shows it)."""

    def __init__(self, message: str, hint: str | None) -> None:
        super().__init__(message)
        self.hint = hint


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
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 (apscheduler: only if a schedule is set)

    try:
        CronTrigger.from_crontab(schedule)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f'not a crontab line ({exc}); e.g. "0 2 * * *"') from exc
    return schedule


class Strict(BaseModel):
    """The base of every config model: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, value: Any) -> Any:
        """A section with nothing under it (`rollback:`, which YAML reads as null) is the
        section with every default, as if absent; a key it requires is then named as
        missing (`benchmark.command`)."""
        return {} if value is None else value

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """A number key refuses YAML's `true` (pydantic would read it as 1: `repeats: {min:
        true}` would run with one trial a side) and text (`"9464"`), as config.md says."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None or any(isinstance(m, BeforeValidator) for m in field.metadata):
            return value  # a value with its own parser (a duration: `30s` is text)
        return number_input(value, field.annotation)


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
