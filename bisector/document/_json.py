"""Reading JSON fields tolerantly: documents stored by earlier versions lack some keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = dict[str, Any]


def opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def strs(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or ())


def maps(values: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(dict(v) for v in values or () if isinstance(v, Mapping))
