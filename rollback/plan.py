"""The plan of a rollback: which files and which YAML keys change (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from bisector.plumbing.yamlload import safe_load

_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class KeyChange:
    key: str  # dotted path, e.g. batching.dynamic
    before: Any
    after: Any
    kind: str  # added | removed | changed


@dataclass(frozen=True)
class FileChange:
    path: str
    kind: str  # added | removed | changed
    keys: tuple[KeyChange, ...] = ()
    unparsed: bool = False  # YAML that did not parse: only the file is known to change


@dataclass(frozen=True)
class Plan:
    """Going from the live set to the target set."""

    changes: tuple[FileChange, ...] = field(default_factory=tuple)
    unchanged: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def paths(self, kind: str) -> list[str]:
        return [c.path for c in self.changes if c.kind == kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.paths("added"),
            "removed": self.paths("removed"),
            "changed": self.paths("changed"),
            "keys": [
                {"file": c.path, "key": k.key, "kind": k.kind, "before": k.before, "after": k.after}
                for c in self.changes
                for k in c.keys
            ],
        }


_MISSING = object()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> dotted keys; lists and scalars are leaves."""
    if isinstance(tree, Mapping) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix or "(document)": tree}


def _load(data: bytes) -> tuple[dict[str, Any] | None, bool]:
    try:
        return flatten(safe_load(data)), True
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None, False


def key_changes(before: bytes | None, after: bytes | None) -> tuple[tuple[KeyChange, ...], bool]:
    """Dotted keys that differ between two YAML documents; (keys, parsed-ok)."""
    old, ok_old = _load(before) if before is not None else ({}, True)
    new, ok_new = _load(after) if after is not None else ({}, True)
    if old is None or new is None or not (ok_old and ok_new):
        return (), False
    keys: list[KeyChange] = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a is _MISSING:
            keys.append(KeyChange(key, None, b, "added"))
        elif b is _MISSING:
            keys.append(KeyChange(key, a, None, "removed"))
        elif a != b or type(a) is not type(b):
            keys.append(KeyChange(key, a, b, "changed"))
    return tuple(keys), True


def make_plan(live: Mapping[str, bytes], target: Mapping[str, bytes]) -> Plan:
    """Files added, removed and changed going from `live` to `target`, with YAML keys."""
    changes: list[FileChange] = []
    unchanged: list[str] = []
    for path in sorted(live.keys() | target.keys()):
        before, after = live.get(path), target.get(path)
        if before == after:
            unchanged.append(path)
            continue
        kind = "added" if before is None else "removed" if after is None else "changed"
        keys: tuple[KeyChange, ...] = ()
        parsed = True
        if path.endswith(_YAML_SUFFIXES):
            keys, parsed = key_changes(before, after)
        changes.append(FileChange(path, kind, keys, unparsed=not parsed))
    return Plan(tuple(changes), tuple(unchanged))
