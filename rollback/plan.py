"""The plan of a rollback: which files and which YAML keys change (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from bisector.plumbing import yamlkeys
from bisector.plumbing.yamlload import safe_load

_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class KeyChange:
    key: str  # key path (bisector.plumbing.yamlkeys), e.g. batching.dynamic, a[0], a\.b
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


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        return yamlkeys.flatten(safe_load(data))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None


def key_changes(before: bytes | None, after: bytes | None) -> tuple[tuple[KeyChange, ...], bool]:
    """Keys (named by `yamlkeys`) that differ between two YAML documents; (keys, parsed-ok)."""
    old = _load(before) if before is not None else {}
    new = _load(after) if after is not None else {}
    if old is None or new is None:
        return (), False
    return tuple(
        KeyChange(d.key, d.old, d.new, d.change) for d in yamlkeys.diff_flat(old, new)
    ), True


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
