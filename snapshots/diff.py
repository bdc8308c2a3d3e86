"""What changed between two snapshots: config keys, packages, resolved environments.

Pure: it works on manifests, environment records and config bytes already read (and
verified) by the store. JSON shape (stable; documented in `SnapshotDiff.to_json`)::

    {"a": {"ref", "commit", "snapshot", "tags", "date", "subject"}, "b": {...},
     "configs":  [{"file", "key", "change", "old", "new", "note", "risk"}],
     "packages": [{"name", "change", "from", "to", "risk"}],
     "resolved": [{"env", "name", "change", "from", "to", "risk"}],
     "runtime":  [{"env", "fact", "from", "to", "risk"}]}

`configs[].key` is a dotted path, or null for a change of the whole file (`added`,
`removed`, `renamed`, or `changed` when a side is not parseable: `note` says why).
`packages[].change` is added | removed | upgraded | downgraded | changed (a specifier,
extras or marker change without two comparable pinned versions).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from snapshots.configs import Flat, flatten, is_structured, parse_config_bytes
from snapshots.manifest import DeclaredDependency, EnvironmentRecord, Manifest, Snapshot

__all__ = [
    "ConfigChange",
    "PackageChange",
    "Risk",
    "RuntimeChange",
    "SideInfo",
    "SnapshotDiff",
    "diff_configs",
    "diff_declared",
    "diff_snapshots",
    "is_gpu_stack",
    "version_risk",
]

ConfigChangeKind = Literal["added", "removed", "changed", "renamed"]
PackageChangeKind = Literal["added", "removed", "upgraded", "downgraded", "changed"]


class Risk(enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


_GPU_STACK_NAMES = frozenset({"transformers", "tokenizers", "triton", "cudnn", "jax", "jaxlib"})
_GPU_STACK_PREFIXES = ("torch", "nvidia-", "cuda", "cudnn", "cupy")


def is_gpu_stack(name: str) -> bool:
    """torch, CUDA, cuDNN and the model libraries whose changes usually move GPU numbers."""
    return name in _GPU_STACK_NAMES or name.startswith(_GPU_STACK_PREFIXES) or "cuda" in name


def version_risk(name: str, old: str, new: str) -> Risk:
    """high: GPU stack or major version; medium: minor; low: anything smaller."""
    if is_gpu_stack(name):
        return Risk.HIGH
    try:
        a, b = Version(old).release, Version(new).release
    except InvalidVersion:
        return Risk.MEDIUM
    a3, b3 = (a + (0, 0))[:3], (b + (0, 0))[:3]
    if a3[0] != b3[0]:
        return Risk.HIGH
    if a3[1] != b3[1]:
        return Risk.MEDIUM
    return Risk.LOW


def _presence_risk(name: str) -> Risk:
    return Risk.HIGH if is_gpu_stack(name) else Risk.MEDIUM


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


@dataclass(frozen=True)
class PackageChange:
    name: str
    change: PackageChangeKind
    old: str | None
    new: str | None
    risk: Risk
    env: str | None = None  # set for resolved environments

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"env": self.env} if self.env is not None else {}
        doc.update(
            {
                "name": self.name,
                "change": self.change,
                "from": self.old,
                "to": self.new,
                "risk": self.risk.value,
            }
        )
        return doc


@dataclass(frozen=True)
class RuntimeChange:
    env: str
    fact: str
    old: str | None
    new: str | None
    risk: Risk

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "fact": self.fact,
            "from": self.old,
            "to": self.new,
            "risk": self.risk.value,
        }


@dataclass(frozen=True)
class SideInfo:
    ref: str
    commit: str
    snapshot: str
    tags: tuple[str, ...]
    date: str
    subject: str

    @classmethod
    def of(cls, ref: str, m: Manifest) -> SideInfo:
        return cls(ref, m.commit, m.id, m.tags, m.date, m.subject)

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "commit": self.commit,
            "snapshot": self.snapshot,
            "tags": list(self.tags),
            "date": self.date,
            "subject": self.subject,
        }


@dataclass(frozen=True)
class SnapshotDiff:
    a: SideInfo
    b: SideInfo
    configs: tuple[ConfigChange, ...]
    packages: tuple[PackageChange, ...]
    resolved: tuple[PackageChange, ...] = ()
    runtime: tuple[RuntimeChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.configs or self.packages or self.resolved or self.runtime)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "configs": [c.to_json() for c in self.configs],
            "packages": [p.to_json() for p in self.packages],
            "resolved": [p.to_json() for p in self.resolved],
            "runtime": [r.to_json() for r in self.runtime],
        }


# --- configs ---------------------------------------------------------------------------


def _natural(key: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.]", key)]


def _diff_flat(file: str, old: Flat, new: Flat) -> list[ConfigChange]:
    out: list[ConfigChange] = []
    for key in sorted(old.keys() | new.keys(), key=_natural):
        if key not in new:
            out.append(ConfigChange(file, key, "removed", old=old[key]))
        elif key not in old:
            out.append(ConfigChange(file, key, "added", new=new[key]))
        elif old[key] != new[key] or type(old[key]) is not type(new[key]):
            out.append(ConfigChange(file, key, "changed", old=old[key], new=new[key]))
    return out


@dataclass(frozen=True)
class _Side:
    """One config file at one side: its object id, flattened keys or parse problem."""

    object: str
    flat: Flat | None  # None: opaque or unparseable
    error: str | None


def _sides(manifest: Manifest, files: Mapping[str, bytes]) -> dict[str, _Side]:
    out: dict[str, _Side] = {}
    for cf in manifest.configs:
        doc, err = parse_config_bytes(cf.path, files[cf.path])
        flat = flatten(doc) if err is None and is_structured(cf.path) else None
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
    return sorted(out, key=lambda c: (c.file, c.key is not None, _natural(c.key or "")))


# --- packages --------------------------------------------------------------------------

_VERSION_SOURCE_RANK = {"lock": 0, "requirement": 1, "constraint": 2}


@dataclass(frozen=True)
class _Effective:
    """A package's declaration merged over every file that mentions it."""

    version: str | None
    specifier: str
    extras: tuple[str, ...]
    markers: tuple[str, ...]

    def describe(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        markers = f"; {' or '.join(self.markers)}" if self.markers else ""
        return f"{extras}{self.specifier or '*'}{markers}"

    def short(self) -> str:
        return self.version if self.version is not None else self.describe()


def _effective(deps: Iterable[DeclaredDependency]) -> dict[str, _Effective]:
    by_name: dict[str, list[DeclaredDependency]] = {}
    for d in deps:
        by_name.setdefault(d.name, []).append(d)
    out: dict[str, _Effective] = {}
    for name, entries in by_name.items():
        pinned = sorted(
            (d for d in entries if d.version), key=lambda d: _VERSION_SOURCE_RANK[d.kind]
        )
        version = pinned[0].version if pinned else None
        specs = sorted({d.specifier for d in entries if d.specifier and d.kind != "lock"})
        if not specs and version is not None:
            specs = [f"=={version}"]
        out[name] = _Effective(
            version=version,
            specifier=",".join(specs),
            extras=tuple(sorted({e for d in entries for e in d.extras})),
            markers=tuple(sorted({d.marker for d in entries if d.marker})),
        )
    return out


def _compare_versions(name: str, old: str, new: str, env: str | None) -> PackageChange | None:
    try:
        ordered = Version(old) < Version(new)
        same = Version(old) == Version(new)
    except InvalidVersion:
        ordered, same = old < new, old == new
    if same:
        return None
    kind: PackageChangeKind = "upgraded" if ordered else "downgraded"
    return PackageChange(name, kind, old, new, version_risk(name, old, new), env)


def diff_declared(
    a: Iterable[DeclaredDependency], b: Iterable[DeclaredDependency]
) -> list[PackageChange]:
    ea, eb = _effective(a), _effective(b)
    out: list[PackageChange] = []
    for name in sorted(ea.keys() | eb.keys()):
        old, new = ea.get(name), eb.get(name)
        if old is None and new is not None:
            out.append(PackageChange(name, "added", None, new.short(), _presence_risk(name)))
        elif new is None and old is not None:
            out.append(PackageChange(name, "removed", old.short(), None, _presence_risk(name)))
        elif old is not None and new is not None and old != new:
            if old.version is not None and new.version is not None and old.version != new.version:
                change = _compare_versions(name, old.version, new.version, None)
                if change is not None:
                    out.append(change)
                    continue
            # no two comparable pins: a specifier, extras or marker change, or a locked
            # version that appeared or disappeared under an unchanged specifier
            same_text = old.describe() == new.describe()
            before, after = (
                (old.short(), new.short()) if same_text else (old.describe(), new.describe())
            )
            out.append(PackageChange(name, "changed", before, after, _presence_risk(name)))
    return out


def _diff_resolved(env: str, a: EnvironmentRecord, b: EnvironmentRecord) -> list[PackageChange]:
    va = {p.name: p.version for p in a.resolved}
    vb = {p.name: p.version for p in b.resolved}
    out: list[PackageChange] = []
    for name in sorted(va.keys() | vb.keys()):
        if name not in va:
            out.append(PackageChange(name, "added", None, vb[name], _presence_risk(name), env))
        elif name not in vb:
            out.append(PackageChange(name, "removed", va[name], None, _presence_risk(name), env))
        elif (change := _compare_versions(name, va[name], vb[name], env)) is not None:
            out.append(change)
    return out


_HIGH_RISK_FACTS = frozenset({"cuda", "cudnn", "driver", "gpu", "torch"})


def _diff_runtime(env: str, a: EnvironmentRecord, b: EnvironmentRecord) -> list[RuntimeChange]:
    ra = {**a.runtime.extra, **a.runtime.model_dump(exclude={"extra"})}
    rb = {**b.runtime.extra, **b.runtime.model_dump(exclude={"extra"})}
    return [
        RuntimeChange(
            env,
            fact,
            ra.get(fact),
            rb.get(fact),
            Risk.HIGH if fact in _HIGH_RISK_FACTS else Risk.MEDIUM,
        )
        for fact in sorted(ra.keys() | rb.keys())
        if ra.get(fact) != rb.get(fact)
    ]


def _env_pairs(a: Snapshot, b: Snapshot) -> list[tuple[str, EnvironmentRecord, EnvironmentRecord]]:
    """Same environment key on both sides; else the newest record of each side."""
    common = sorted(a.environments.keys() & b.environments.keys())
    if common:
        return [(k, a.environments[k], b.environments[k]) for k in common]
    if a.environments and b.environments:
        ka, kb = list(a.environments)[-1], list(b.environments)[-1]
        return [(f"{ka} -> {kb}", a.environments[ka], b.environments[kb])]
    return []


def diff_snapshots(
    a: Snapshot,
    a_files: Mapping[str, bytes],
    b: Snapshot,
    b_files: Mapping[str, bytes],
    *,
    a_ref: str | None = None,
    b_ref: str | None = None,
) -> SnapshotDiff:
    """Everything that differs from `a` to `b`; `*_files` are their config bytes by path."""
    resolved: list[PackageChange] = []
    runtime: list[RuntimeChange] = []
    for env, ra, rb in _env_pairs(a, b):
        resolved += _diff_resolved(env, ra, rb)
        runtime += _diff_runtime(env, ra, rb)
    return SnapshotDiff(
        a=SideInfo.of(a_ref or a.label, a.manifest),
        b=SideInfo.of(b_ref or b.label, b.manifest),
        configs=tuple(diff_configs(a.manifest, a_files, b.manifest, b_files)),
        packages=tuple(diff_declared(a.manifest.dependencies, b.manifest.dependencies)),
        resolved=tuple(resolved),
        runtime=tuple(runtime),
    )
