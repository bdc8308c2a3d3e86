"""The value types of `bisector.yaml`: durations, thresholds, and the strict base model.

Apart from `bisector.config` so that sections kept in modules of their own (the guard's,
`bisector.configguard`) share them without an import cycle; `bisector.config` re-exports
every name.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from bisector.core.types import Threshold

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
    """`repr` cut to a line: error messages echo what the user wrote, not megabytes of it."""
    text = repr(value)
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
