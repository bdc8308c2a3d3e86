"""Declared dependencies, read from files at a commit and parsed with `packaging`.

Sources: requirements files (`-r` and `-c` includes resolved relative to the including
file, option lines such as `--find-links` and `-e` ignored, environment markers kept),
pyproject.toml (`[project].dependencies` and `optional-dependencies`), uv.lock and
poetry.lock (package name and version). Files come from a reader callable (in practice:
git objects at the commit), so this module does no I/O of its own.

A line that `packaging` cannot parse is not fatal: it becomes a note in the manifest.
"""

from __future__ import annotations

import posixpath
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from snapshots.manifest import DeclaredDependency, DependencyKind

__all__ = ["AUTO_FILES", "DeclaredSet", "auto_detect", "read_declared", "pinned_version"]

Reader = Callable[[str], bytes | None]

AUTO_FILES = ("pyproject.toml", "uv.lock", "poetry.lock")


def auto_detect(root_files: Iterable[str]) -> list[str]:
    """Dependency files at the repository root that are read without being configured."""
    found = []
    for path in root_files:
        if "/" in path:
            continue
        if path in AUTO_FILES or (path.startswith("requirements") and path.endswith(".txt")):
            found.append(path)
    return sorted(found)


@dataclass
class DeclaredSet:
    """What `read_declared` found: dependencies, the files read, and notes."""

    dependencies: list[DeclaredDependency] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def pinned_version(req: Requirement) -> str | None:
    """The version of an exact pin (`==1.2.3`, `===x`), else None (`==1.*` is a range)."""
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        return None
    try:
        return str(Version(specs[0].version))
    except InvalidVersion:
        return specs[0].version


def _declared(
    req: Requirement, source: str, kind: DependencyKind, group: str | None = None
) -> DeclaredDependency:
    return DeclaredDependency(
        name=canonicalize_name(req.name),
        specifier=str(req.specifier),
        version=pinned_version(req),
        source=source,
        kind=kind,
        extras=tuple(sorted(req.extras)),
        marker=str(req.marker) if req.marker else None,
        group=group,
        url=req.url,
    )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with `\\` continuations joined and comments removed, with 1-based numbers."""
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        line = raw
        if line.lstrip().startswith("#"):
            line = ""
        elif " #" in line or "\t#" in line:
            line = line[: min(i for i in (line.find(" #"), line.find("\t#")) if i >= 0)]
        if line.endswith("\\"):
            buf += line[:-1]
            continue
        buf += line
        if buf.strip():
            yield start, buf.strip()
        buf = ""
    if buf.strip():
        yield start, buf.strip()


_INCLUDE_FLAGS = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
}


def _include(line: str) -> tuple[DependencyKind, str] | None:
    for flag, kind in _INCLUDE_FLAGS.items():
        if line.startswith(flag):
            rest = line[len(flag) :]
            if rest.startswith("="):
                rest = rest[1:]
            elif flag.startswith("--") and rest[:1] not in (" ", "\t"):
                continue
            target = rest.strip()
            if target:
                return ("requirement" if kind == "requirement" else "constraint"), target
    return None


class _Reader:
    def __init__(self, read: Reader, out: DeclaredSet) -> None:
        self._read = read
        self.out = out

    def get(self, path: str) -> bytes | None:
        if path not in self.out.files:
            data = self._read(path)
            if data is None:
                return None
            self.out.files[path] = data
        return self.out.files[path]

    def text(self, path: str) -> str | None:
        data = self.get(path)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.out.notes.append(f"{path}: not UTF-8, skipped")
            return None


def _requirements(r: _Reader, path: str, kind: DependencyKind, seen: set[str]) -> None:
    if path in seen:
        return
    seen.add(path)
    text = r.text(path)
    if text is None:
        return
    for lineno, line in _logical_lines(text):
        inc = _include(line)
        if inc is not None:
            inc_kind, target = inc
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if joined.startswith("../") or joined == ".." or posixpath.isabs(target):
                r.out.notes.append(f"{path}:{lineno}: include {target!r} is outside the repository")
                continue
            if r.get(joined) is None:
                r.out.notes.append(f"{path}:{lineno}: included file {joined} is missing")
                continue
            # a constraint file stays a constraint file whatever it includes
            _requirements(r, joined, "constraint" if kind == "constraint" else inc_kind, seen)
            continue
        if line.startswith("-"):
            continue  # --find-links, --index-url, -e, --hash-only lines, ...: not a package
        spec = line.split(" --hash", 1)[0].split("\t--hash", 1)[0].strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            r.out.notes.append(f"{path}:{lineno}: cannot parse {spec!r}")
            continue
        r.out.dependencies.append(_declared(req, path, kind))


def _toml(r: _Reader, path: str) -> dict[str, object] | None:
    text = r.text(path)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        r.out.notes.append(f"{path}: malformed TOML: {exc}")
        return None


def _pyproject(r: _Reader, path: str) -> None:
    doc = _toml(r, path)
    project = doc.get("project") if doc else None
    if not isinstance(project, dict):
        return
    groups: list[tuple[str | None, object]] = [(None, project.get("dependencies", []))]
    optional = project.get("optional-dependencies", {})
    if isinstance(optional, dict):
        groups += sorted(optional.items())
    for group, entries in groups:
        if not isinstance(entries, list):
            continue
        for entry in entries:
            try:
                req = Requirement(str(entry))
            except InvalidRequirement:
                r.out.notes.append(f"{path}: cannot parse {entry!r}")
                continue
            r.out.dependencies.append(_declared(req, path, "requirement", group))


def _lock(r: _Reader, path: str) -> None:
    doc = _toml(r, path)
    packages = doc.get("package", []) if doc else []
    if not isinstance(packages, list):
        return
    for pkg in packages:
        if not isinstance(pkg, dict) or "name" not in pkg or "version" not in pkg:
            continue
        source = pkg.get("source")
        if isinstance(source, dict) and ("editable" in source or "virtual" in source):
            continue  # the project itself, not a dependency
        version = str(pkg["version"])
        try:
            version = str(Version(version))
        except InvalidVersion:
            pass
        r.out.dependencies.append(
            DeclaredDependency(
                name=canonicalize_name(str(pkg["name"])),
                specifier=f"=={version}",
                version=version,
                source=path,
                kind="lock",
            )
        )


def read_declared(read: Reader, paths: Iterable[str]) -> DeclaredSet:
    """Parse every file in `paths` that exists at the commit (missing ones are skipped)."""
    out = DeclaredSet()
    r = _Reader(read, out)
    seen: set[str] = set()
    for path in dict.fromkeys(p.removeprefix("./") for p in paths):
        name = posixpath.basename(path)
        if name == "pyproject.toml":
            if r.get(path) is not None:
                _pyproject(r, path)
        elif name.endswith(".lock"):
            if r.get(path) is not None:
                _lock(r, path)
        else:
            _requirements(r, path, "requirement", seen)
    out.dependencies.sort(key=lambda d: (d.name, d.source, d.kind, d.group or "", d.specifier))
    return out
