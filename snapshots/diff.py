"""What changed between two snapshots: config keys, packages, resolved environments.

Pure: it works on manifests, environment records and config bytes already read (and
verified) by the store. JSON shape (stable; documented in `SnapshotDiff.to_json`)::

    {"a": {"ref", "commit", "snapshot", "tags", "date", "subject"}, "b": {...},
     "configs":  [{"file", "key", "change", "old", "new", "note", "risk"}],
     "packages": [{"name", "change", "from", "to", "risk"}],
     "resolved": [{"env", "name", "change", "from", "to", "risk"}],
     "runtime":  [{"env", "fact", "from", "to", "risk"}]}

`configs[].key` is a key path (`bisector.plumbing.yamlkeys`: `a.b`, `a[0]`, and
`a\\.b` for a key holding a dot), or null for a change of the whole file (`added`,
`removed`, `renamed`, or `changed` when a side is not parseable: `note` says why).
`packages[].change` is added | removed | upgraded | downgraded | changed (a specifier,
extras or marker change without two comparable pinned versions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from snapshots.configdiff import ConfigChange, Risk, diff_configs
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

PackageChangeKind = Literal["added", "removed", "upgraded", "downgraded", "changed"]


_GPU_STACK_NAMES = frozenset({"transformers", "tokenizers", "triton", "cudnn", "jax", "jaxlib"})
_GPU_STACK_PREFIXES = ("torch", "nvidia-", "cuda", "cudnn", "cupy")
# a local version label naming the accelerator build: `+cu121`, `+cu118`, `+cpu`, `+rocm6.0`
_ACCELERATOR_LOCAL = re.compile(r"(?:^|\.)(?:cu\d+|cuda|cpu|rocm)", re.IGNORECASE)


def is_gpu_stack(name: str) -> bool:
    """torch, CUDA, cuDNN and the model libraries whose changes usually move GPU numbers."""
    return name in _GPU_STACK_NAMES or name.startswith(_GPU_STACK_PREFIXES) or "cuda" in name


def version_risk(name: str, old: str, new: str) -> Risk:
    """high: GPU stack, epoch, major version or CUDA build (`+cu121` -> `+cu118`); medium:
    minor; low: anything smaller."""
    if is_gpu_stack(name):
        return Risk.HIGH
    try:
        va, vb = Version(old), Version(new)
    except InvalidVersion:
        return Risk.MEDIUM
    if va.epoch != vb.epoch:
        return Risk.HIGH  # an epoch restarts the numbering: `1!1.0` is newer than `9.0`
    if va.local != vb.local and any(_ACCELERATOR_LOCAL.search(v.local or "") for v in (va, vb)):
        return Risk.HIGH  # the same release built for another CUDA (or none): a CUDA change
    a, b = va.release, vb.release
    a3, b3 = (a + (0, 0))[:3], (b + (0, 0))[:3]
    if a3[0] != b3[0]:
        return Risk.HIGH
    if a3[1] != b3[1]:
        return Risk.MEDIUM
    return Risk.LOW


def _presence_risk(name: str) -> Risk:
    return Risk.HIGH if is_gpu_stack(name) else Risk.MEDIUM


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


def _same(old: _Effective, new: _Effective) -> bool:
    """The same declaration written differently (`==1.0` and `==1.0.0`, specifiers in
    another order): equal as packaging reads them, so no change."""
    if (old.extras, old.markers) != (new.extras, new.markers):
        return False
    try:
        same_pin = old.version == new.version or (
            old.version is not None
            and new.version is not None
            and Version(old.version) == Version(new.version)
        )
        return same_pin and SpecifierSet(old.specifier) == SpecifierSet(new.specifier)
    except (InvalidVersion, InvalidSpecifier):
        return False


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
        elif old is not None and new is not None and old != new and not _same(old, new):
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
