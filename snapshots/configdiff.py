"""What changed in the config files between two snapshots (part of `snapshots.diff`).

Keys are named by `bisector.plumbing.yamlkeys` and compared by its `diff_flat`, the
same rule `rollback --dry-run` and isolation's `culprit.config_keys` use.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bisector.plumbing import yamlkeys
from bisector.plumbing.yamlkeys import diff_flat, natural_order
from snapshots.configs import Flat, is_structured, json_safe, parse_config_bytes
from snapshots.manifest import Manifest

__all__ = ["ConfigChange", "Risk", "diff_configs"]

ConfigChangeKind = Literal["added", "removed", "changed", "renamed"]


class Risk(enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class ConfigChange:
    file: str
    key: str | None
    change: ConfigChangeKind
    old: Any = None
    new: Any = None
    note: str | None = None

    @property
    def risk(self) -> Risk:
        """A removed key (or file) is high: the service falls back to a default nobody
        chose; a rename only moves values (low); additions and changes are medium."""
        if self.change == "removed":
            return Risk.HIGH
        return Risk.LOW if self.change == "renamed" else Risk.MEDIUM

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "key": self.key,
            "change": self.change,
            "old": self.old,
            "new": self.new,
            "note": self.note,
            "risk": self.risk.value,
        }


def _diff_flat(file: str, old: Flat, new: Flat) -> list[ConfigChange]:
    return [
        ConfigChange(file, d.key, d.change, json_safe(d.old), json_safe(d.new))
        for d in diff_flat(old, new)
    ]


@dataclass(frozen=True)
class _Side:
    """One config file at one side: its object id, flattened keys or parse problem."""

    object: str
    # the leaves as parsed, not yet JSON-safe: a date and its ISO text differ
    flat: Flat | None  # None: opaque or unparseable
    error: str | None


def _sides(manifest: Manifest, files: Mapping[str, bytes]) -> dict[str, _Side]:
    out: dict[str, _Side] = {}
    for cf in manifest.configs:
        doc, err = parse_config_bytes(cf.path, files[cf.path])
        flat = yamlkeys.flatten(doc) if err is None and is_structured(cf.path) else None
        out[cf.path] = _Side(cf.object, flat, err)
    return out


def _similarity(a: _Side, b: _Side) -> float:
    if a.object == b.object:
        return 1.0
    if a.flat is None or b.flat is None or not (a.flat or b.flat):
        return 0.0
    common = sum(1 for k, v in a.flat.items() if k in b.flat and b.flat[k] == v)
    return common / max(len(a.flat), len(b.flat))


def _pair_renames(
    removed: list[str], added: list[str], a: Mapping[str, _Side], b: Mapping[str, _Side]
) -> list[tuple[str, str]]:
    """Pairs (old, new) of files that moved: same bytes, or at least half the same keys."""
    scored = sorted(
        ((_similarity(a[o], b[n]), o, n) for o in removed for n in added),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    pairs: list[tuple[str, str]] = []
    used_old: set[str] = set()
    used_new: set[str] = set()
    for score, o, n in scored:
        if score >= 0.5 and o not in used_old and n not in used_new:
            pairs.append((o, n))
            used_old.add(o)
            used_new.add(n)
    return pairs


def _diff_file(file: str, old: _Side, new: _Side) -> list[ConfigChange]:
    if old.object == new.object:
        return []
    if old.flat is not None and new.flat is not None:
        return _diff_flat(file, old.flat, new.flat)
    errors = [f"{side}: {s.error}" for side, s in (("a", old), ("b", new)) if s.error]
    note = "; ".join(errors) if errors else "not YAML: compared as bytes"
    return [ConfigChange(file, None, "changed", note=note)]


def diff_configs(
    a: Manifest, a_files: Mapping[str, bytes], b: Manifest, b_files: Mapping[str, bytes]
) -> list[ConfigChange]:
    """Key changes in files present at both sides, files added, removed and renamed."""
    sa, sb = _sides(a, a_files), _sides(b, b_files)
    removed = sorted(sa.keys() - sb.keys())
    added = sorted(sb.keys() - sa.keys())
    renames = _pair_renames(removed, added, sa, sb)
    out: list[ConfigChange] = []
    for path in sorted(sa.keys() & sb.keys()):
        out += _diff_file(path, sa[path], sb[path])
    for old, new in renames:
        out.append(ConfigChange(new, None, "renamed", old=old, new=new))
        out += _diff_file(new, sa[old], sb[new])
    moved_old = {o for o, _ in renames}
    moved_new = {n for _, n in renames}
    out += [ConfigChange(p, None, "removed") for p in removed if p not in moved_old]
    out += [ConfigChange(p, None, "added") for p in added if p not in moved_new]
    return sorted(out, key=lambda c: (c.file, c.key is not None, natural_order(c.key or "")))
