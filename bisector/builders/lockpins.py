"""uv.lock as the requirement lines that install what it locked, on this platform only.

A uv.lock holds every platform's and every Python's resolution: a package may appear at two
versions (`resolution-markers` say for which Pythons or platforms each is), and a package
that only one platform needs (`pywin32`, reached through a dependency whose `marker` is
`sys_platform == 'win32'`) is listed like any other. Pinning every entry unconditionally
asks for both versions at once, or for a package that has no file for this platform, and
the environment cannot be built. So each pin carries the markers the lock gives it, and the
installer evaluates them for the environment's own interpreter: its resolution markers,
and, when every dependency on it is conditional, those conditions (the union; a package
that some dependency needs unconditionally is pinned without one). A parent's own condition
is not carried down: that can only install a package more, as pinning everything did.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from bisector.errors import BuildError


def _any(markers: Iterable[str]) -> str | None:
    """The union of `markers` as one marker; None when one does not parse (no condition)."""
    parts = sorted(set(markers))
    try:
        for part in parts:
            Marker(part)
    except InvalidMarker:
        return None
    return " or ".join(f"({m})" for m in parts) if len(parts) > 1 else parts[0]


def _edges(package: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """A package's dependencies: plain, optional and development groups alike."""
    groups: list[Any] = [package.get("dependencies", [])]
    for table in ("optional-dependencies", "dev-dependencies"):
        extra = package.get(table, {})
        if isinstance(extra, dict):
            groups += list(extra.values())
    for group in groups:
        if isinstance(group, list):
            yield from (d for d in group if isinstance(d, dict) and "name" in d)


def _is_project(package: Mapping[str, Any]) -> bool:
    source = package.get("source")
    return isinstance(source, dict) and ("editable" in source or "virtual" in source)


def uv_lock_pins(path: str, data: bytes) -> list[str]:
    """The `name==version[ ; marker]` lines of a uv.lock. :raises BuildError: not TOML."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{path} is not valid TOML: {exc}") from exc
    entries = doc.get("package", [])
    packages = [
        p
        for p in (entries if isinstance(entries, list) else [])
        if isinstance(p, dict) and "name" in p and "version" in p
    ]
    versions: dict[str, list[str]] = {}
    for p in packages:
        versions.setdefault(canonicalize_name(str(p["name"])), []).append(str(p["version"]))
    incoming: dict[tuple[str, str], list[str | None]] = {}
    for p in packages:
        for dep in _edges(p):
            name = canonicalize_name(str(dep["name"]))
            targets = [str(dep["version"])] if "version" in dep else versions.get(name, [])
            for version in targets:
                marker = dep.get("marker")
                incoming.setdefault((name, version), []).append(
                    marker if isinstance(marker, str) and marker else None
                )
    lines = set()
    for p in packages:
        if _is_project(p):
            continue
        name, version = canonicalize_name(str(p["name"])), str(p["version"])
        conditions = []
        resolution = p.get("resolution-markers")
        if isinstance(resolution, list) and resolution:
            conditions.append(_any(str(m) for m in resolution))
        needed_by = incoming.get((name, version), [])
        if needed_by and all(needed_by):
            conditions.append(_any(m for m in needed_by if m))
        marker = " and ".join(f"({c})" for c in conditions if c)
        lines.add(f"{name}=={version}" + (f" ; {marker}" if marker else ""))
    return sorted(lines)
