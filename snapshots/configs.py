"""Config files: which ones a snapshot holds, and their YAML-aware flattening.

Files are matched against `snapshots.configs` globs (`**` crosses folders, `*` does
not; both match any character of a name, a newline included). YAML and JSON files (a
`.json` file read by JSON's rules) are flattened to key paths by
`bisector.plumbing.yamlkeys` (`batching.dynamic`, list items by index: `models[0].name`, a key holding a dot escaped: `a\\.b`); any other matched file
is opaque (compared by its bytes).
A file that fails to parse is still stored byte for byte; the snapshot records the
parse error and a diff reports the file as changed with that note instead of failing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import yaml

from bisector.plumbing import yamlkeys
from bisector.plumbing.yamlload import safe_load

__all__ = ["Flat", "flatten", "is_structured", "json_safe", "match_globs", "parse_config_bytes"]

Flat = dict[str, Any]  # key path -> JSON-safe scalar (or {} / [] for empty containers)

_STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json")


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(ch))
            i += 1
    # DOTALL: `.` of `**` must match a newline as `[^/]` of `*` does, or a folder named
    # `dir<newline>name` is crossed by `*` but not by `**`, and its configs silently left
    # out of every snapshot.
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def match_globs(paths: Iterable[str], globs: Iterable[str]) -> list[str]:
    """The paths matched by any glob, sorted."""
    regexes = [_glob_regex(g.lstrip("/")) for g in globs]
    return sorted(p for p in paths if any(r.match(p) for r in regexes))


def is_structured(path: str) -> bool:
    return path.lower().endswith(_STRUCTURED_SUFFIXES)


def parse_config_bytes(path: str, data: bytes) -> tuple[Any, str | None]:
    """(document, None) or (None, error message). Opaque files give (None, None)."""
    if not is_structured(path):
        return None, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8: {exc.reason} at byte {exc.start}"
    if path.lower().endswith(".json"):
        # by JSON's rules: YAML takes `1e5` for a string and refuses a tab indent
        try:
            return json.loads(text), None
        except (ValueError, RecursionError) as exc:
            return None, f"malformed JSON: {exc}"
    try:
        return safe_load(text), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return None, f"malformed YAML: {where}{problem}"


def json_safe(value: Any) -> Any:
    """A leaf as JSON can hold it (a date as ISO text, other scalars as `str`)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict | list) and not value:  # an empty container is a leaf
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def flatten(doc: Any) -> Flat:
    """Key paths to JSON-safe leaves; a top-level scalar is the single key "" (the whole file)."""
    return {key: json_safe(value) for key, value in yamlkeys.flatten(doc).items()}
