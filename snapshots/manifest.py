"""What a snapshot is: immutable, typed records and their canonical bytes.

A `Manifest` describes one commit: its tags, date and subject, the config files that
`snapshots.configs` matched (path -> sha256 of the bytes, stored as objects), the
dependency files read and the declared dependencies parsed from them. Its id is the
sha256 of its canonical JSON, which is also the name of the object that holds it, so
the same commit taken twice with the same inputs gives the same id.

Builders attach a resolved environment later as a separate `EnvironmentRecord` (an
object of its own that names the manifest it belongs to); the manifest never changes.
`Snapshot` is the read model: a verified manifest plus the newest record per
environment key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "SCHEMA_VERSION",
    "ConfigFile",
    "DeclaredDependency",
    "DependencyFile",
    "EnvironmentRecord",
    "Manifest",
    "ResolvedPackage",
    "Runtime",
    "Snapshot",
    "canonical_json",
    "sha256_hex",
]

SCHEMA_VERSION = 1

DependencyKind = Literal["requirement", "constraint", "lock"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(doc: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per value, so hashes are stable."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConfigFile(_Frozen):
    """One config file at the commit; `parse_error` is set when it is not valid YAML."""

    path: str
    object: str  # sha256 of the bytes
    size: int
    parse_error: str | None = None


class DependencyFile(_Frozen):
    """A requirements / pyproject / lock file that was read, kept as an object."""

    path: str
    object: str
    size: int


class DeclaredDependency(_Frozen):
    """One dependency as declared in one file (a package can appear in several)."""

    name: str  # canonicalized (PEP 503)
    specifier: str = ""  # e.g. ">=1.0,<2"; "" for a bare name or a lock entry
    version: str | None = None  # set when pinned with == (no wildcard), or from a lock file
    source: str  # the file it was declared in
    kind: DependencyKind = "requirement"
    extras: tuple[str, ...] = ()
    marker: str | None = None
    group: str | None = None  # pyproject optional-dependencies group
    url: str | None = None  # PEP 508 direct reference


class Manifest(_Frozen):
    """The immutable description of one commit; its id is the sha256 of `to_bytes()`."""

    schema_version: int = SCHEMA_VERSION
    commit: str
    tags: tuple[str, ...] = ()
    date: str
    subject: str
    config_globs: tuple[str, ...] = ()
    configs: tuple[ConfigFile, ...] = ()  # sorted by path
    dependency_files: tuple[DependencyFile, ...] = ()
    dependencies: tuple[DeclaredDependency, ...] = ()
    notes: tuple[str, ...] = ()  # lines that could not be parsed, includes that were missing

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @property
    def id(self) -> str:
        return sha256_hex(self.to_bytes())

    def config(self, path: str) -> ConfigFile | None:
        return next((c for c in self.configs if c.path == path), None)


class ResolvedPackage(_Frozen):
    """One installed distribution, as `pip freeze` plus its requirements would list it."""

    name: str
    version: str
    requires: tuple[str, ...] = ()


class Runtime(_Frozen):
    """Facts about the environment a snapshot was built into; unknown facts stay None."""

    python: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    driver: str | None = None
    gpu: str | None = None
    torch: str | None = None
    extra: dict[str, str] = {}


class EnvironmentRecord(_Frozen):
    """A resolved environment attached to a manifest; stored as an object of its own."""

    schema_version: int = SCHEMA_VERSION
    manifest: str  # id of the manifest it belongs to
    env_key: str  # the builder's key (e.g. "venv:py3.11:<hash>")
    resolved: tuple[ResolvedPackage, ...] = ()
    runtime: Runtime = Runtime()

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @property
    def id(self) -> str:
        return sha256_hex(self.to_bytes())


@dataclass(frozen=True)
class Snapshot:
    """A verified manifest with the newest environment record per key."""

    manifest: Manifest
    created: str  # when it was first stored (UTC ISO 8601)
    environments: Mapping[str, EnvironmentRecord] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def commit(self) -> str:
        return self.manifest.commit

    @property
    def label(self) -> str:
        """The first tag, else the short commit id."""
        return self.manifest.tags[0] if self.manifest.tags else self.manifest.commit[:10]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            **self.manifest.model_dump(mode="json"),
            "environments": {
                k: {"id": r.id, **r.model_dump(mode="json", exclude={"manifest"})}
                for k, r in sorted(self.environments.items())
            },
        }
