"""The changes inside one commit that isolation splits, and the files of a partial state.

Pure: works on file bytes already read (from git objects). A `Change` is one package
change of the declared dependencies (from `snapshots.diff.diff_declared`) or one config
key (a key path of `bisector.plumbing.yamlkeys`, compared by its `diff_flat`, the names
`snapshot diff` and `rollback --dry-run` use). `render_files` writes the
parent's dependency and config files with a subset of the changes applied: a file none
of whose changes is applied keeps the parent's bytes, one with all applied the culprit's
bytes, anything in between is rewritten: requirement lines swapped; pyproject.toml's
dependency strings replaced in place (`pyproject_edit`, comments and layout kept); YAML
and JSON loaded, keys set or removed (`yamlkeys.set_leaf` / `remove_leaf`), dumped in the
file's own format (a `.json` file as JSON, which its program can still read).

A package change can touch several files (`Change.files`): its declared file and a lock
(uv.lock, poetry.lock). A lock cannot be rewritten package by package (its resolution
would be a guess), so a state that takes part of a lock's changes *drops the lock* and lets
the resolver install from the declared files, but only where that is exact: every package
of the lock the state stands for must be pinned `==` to that version in the state's
declared files, and a package it does not have must not be declared. Otherwise
`PartialStateError`: the state is unresolved (ddmin groups its changes), never guessed, so
no package is blamed from a state that could not be built as claimed.
"""

from __future__ import annotations

import copy
import json
import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from packaging.version import InvalidVersion, Version

from bisector.isolate.pyproject_edit import EditError, apply_packages, edit_bytes, pin_package
from bisector.isolate.reqlines import logical_lines, pinned
from bisector.plumbing.yamlkeys import diff_flat, natural_order, remove_leaf, set_leaf
from snapshots.configs import flatten, is_structured, parse_config_bytes
from snapshots.deps import read_declared
from snapshots.diff import diff_declared

ChangeKind = Literal["dependency", "config"]
Files = Mapping[str, bytes | None]  # repo path -> content (None: absent)
WHOLE_FILE = "*"  # the `name` of a config change of a whole (unparseable or opaque) file


class PartialStateError(ValueError):
    """The state cannot be written: a file would hold only part of its changes."""


@dataclass(frozen=True, order=True)
class Change:
    """One change of the commit: a package (`name` canonical) or a config key (`name` a key path).

    `old` / `new` are versions or specifiers for packages (None: absent), JSON text of
    the values for config keys (None: absent). `files`: every changed file a package
    change touches (its declared file first, then e.g. a lock); empty means `(file,)`.
    """

    kind: ChangeKind
    file: str
    name: str
    old: str | None
    new: str | None
    change: str = "changed"  # added | removed | upgraded | downgraded | changed
    files: tuple[str, ...] = ()

    @property
    def touched(self) -> tuple[str, ...]:
        return self.files or (self.file,)

    @property
    def label(self) -> str:
        if self.kind == "dependency":
            return f"{self.name} {self.old or '∅'} → {self.new or '∅'}"
        return f"{self.file}:{self.name}"

    def to_json(self) -> dict[str, Any]:
        if self.kind == "dependency":
            return {"name": self.name, "from": self.old, "to": self.new, "change": self.change}
        return {
            "file": self.file,
            "key": self.name,
            "change": self.change,
            "from": None if self.old is None else json.loads(self.old),
            "to": None if self.new is None else json.loads(self.new),
        }


# --- finding the changes -----------------------------------------------------------------


def dependency_changes(parent: Files, culprit: Files, roots: Iterable[str]) -> list[Change]:
    """Package changes between the two commits' declared dependencies (snapshots' diff)."""
    paths = list(roots)

    def reader(files: Files) -> Callable[[str], bytes | None]:
        return lambda path: files.get(path)

    a, b = read_declared(reader(parent), paths), read_declared(reader(culprit), paths)
    sources: dict[str, list[str]] = {}
    for d in [*b.dependencies, *a.dependencies]:  # the culprit's declaration first
        if parent.get(d.source) != culprit.get(d.source) and d.source not in sources.get(
            d.name, []
        ):
            sources.setdefault(d.name, []).append(d.source)
    out = []
    for pc in diff_declared(a.dependencies, b.dependencies):
        touched = sorted(sources.get(pc.name, []), key=lambda p: (is_lock(p), p))
        primary = touched[0] if touched else (paths[0] if paths else "")
        out.append(
            Change(
                "dependency",
                primary,
                pc.name,
                pc.old,
                pc.new,
                pc.change,
                tuple(touched) if len(touched) > 1 else (),
            )
        )
    return out


def is_lock(path: str) -> bool:
    """uv.lock, poetry.lock: resolved sets that cannot take part of their changes."""
    return posixpath.basename(path).endswith(".lock")


def _is_pyproject(path: str) -> bool:
    return posixpath.basename(path) == "pyproject.toml"


def config_changes(parent: Files, culprit: Files) -> list[Change]:
    """Key changes of the config files (whole-file changes where a side does not parse)."""
    out: list[Change] = []
    for path in sorted(set(parent) | set(culprit)):
        old, new = parent.get(path), culprit.get(path)
        if old == new:
            continue
        fo, fn = _flat(path, old), _flat(path, new)
        if fo is None or fn is None:
            kind = "added" if old is None else "removed" if new is None else "changed"
            out.append(Change("config", path, WHOLE_FILE, None, None, kind))
            continue
        for d in diff_flat(fo, fn):
            old_j = None if d.change == "added" else _j(d.old)
            new_j = None if d.change == "removed" else _j(d.new)
            out.append(Change("config", path, d.key, old_j, new_j, d.change))
    return out


def _j(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _flat(path: str, data: bytes | None) -> dict[str, Any] | None:
    if data is None or not is_structured(path):
        return None
    doc, error = _load(path, data)
    return None if error is not None else flatten(doc)


def _is_json(path: str) -> bool:
    return path.lower().endswith(".json")


def _load(path: str, data: bytes) -> tuple[Any, str | None]:
    """A config file's document (JSON read as JSON: YAML would take `1e5` for a string)."""
    return parse_config_bytes(path, data)


# --- writing a partial state -------------------------------------------------------------


def render_files(
    parent: Files,
    culprit: Files,
    changes: Iterable[Change],
    applied: Iterable[Change],
    pins: Mapping[str, str] | None = None,
) -> dict[str, bytes | None]:
    """The files that differ from the parent's in the state with `applied` changes.

    `pins` force package versions (`name -> version`) on top (version bisection).

    :raises PartialStateError: a file cannot hold only part of its changes.
    """
    changes = list(changes)
    by_file: dict[str, list[Change]] = {}
    for c in changes:
        for path in c.touched:
            by_file.setdefault(path, []).append(c)
    chosen = set(applied)
    pins = dict(pins or {})
    out: dict[str, bytes | None] = {}
    locks: dict[str, list[Change]] = {}
    for path, file_changes in by_file.items():
        on = [c for c in file_changes if c in chosen]
        if is_lock(path) and file_changes[0].kind == "dependency":
            pinned = any(c.name in pins for c in file_changes)
            if on and (len(on) < len(file_changes) or pinned):
                locks[path] = on
            else:
                out[path] = culprit.get(path) if on else parent.get(path)
        elif not on:
            out[path] = parent.get(path)
        elif len(on) == len(file_changes):
            out[path] = culprit.get(path)
        elif file_changes[0].kind == "dependency":
            out[path] = _partial_requirements(path, parent.get(path), culprit.get(path), on)
        else:
            out[path] = _partial_config(path, parent.get(path), on)
    for name, version in pins.items():
        found = next((c.file for c in changes if c.kind == "dependency" and c.name == name), None)
        if found is None:
            raise PartialStateError(f"{name} is not a changed package")
        current = out.get(found, parent.get(found))
        out[found] = pin_requirement(found, current, name, version)
    for path, on in locks.items():
        _check_lock_can_go(path, parent, culprit, out, {c.name for c in on}, pins)
        out[path] = None  # left out: the resolver installs from the declared pins
    return out


def _check_lock_can_go(
    path: str,
    parent: Files,
    culprit: Files,
    rendered: Mapping[str, bytes | None],
    applied: set[str],
    pins: Mapping[str, str],
) -> None:
    """Pass when the state's declared files pin exactly what the lock would hold (then the
    lock can be left out; see the module docstring).

    :raises PartialStateError: the resolver would be free to choose some locked version.
    """

    def locked(files: Files) -> dict[str, str]:
        found = read_declared(lambda p: files.get(p), [path]).dependencies
        return {d.name: d.version or "" for d in found}

    old, new = locked(parent), locked(culprit)
    claimed = {n: new.get(n) if n in applied else old.get(n) for n in {*old, *new}}
    claimed |= {n: v for n, v in pins.items() if n in claimed}
    state = {**parent, **rendered}
    declared_paths = [
        p for p in state if not is_lock(p) and (_is_requirements(p) or _is_pyproject(p))
    ]
    pinned: dict[str, set[str | None]] = {}
    for d in read_declared(lambda p: state.get(p), declared_paths).dependencies:
        pinned.setdefault(d.name, set()).add(d.version)
    for name, version in sorted(claimed.items()):
        have = pinned.get(name, set())
        if (version is None and have) or (version is not None and have != {version}):
            want = "absent" if version is None else f"=={version}"
            raise PartialStateError(
                f"{path}: left out, the resolver would not be held to {name} {want} "
                f"(declared: {', '.join(sorted(str(v) for v in have)) or 'nothing'})"
            )


def _is_requirements(path: str) -> bool:
    return posixpath.basename(path).endswith((".txt", ".in"))


def _partial_requirements(
    path: str, old: bytes | None, new: bytes | None, on: list[Change]
) -> bytes:
    names = {c.name for c in on}
    if _is_pyproject(path) and old is not None and new is not None:
        try:
            return edit_bytes(old, lambda text: apply_packages(text, new.decode("utf-8"), names))
        except (EditError, UnicodeDecodeError) as exc:
            raise PartialStateError(f"{path}: {exc}") from exc
    if not _is_requirements(path) or old is None or new is None:
        raise PartialStateError(
            f"{path}: only requirement files and pyproject.toml can take part of their changes"
        )
    new_lines = {n: chunk for n, chunk in logical_lines(new.decode("utf-8")) if n in names}
    lines: list[str] = []
    for name, chunk in logical_lines(old.decode("utf-8")):  # a requirement with its hashes
        if name in names:
            if name in new_lines:
                lines.append(new_lines.pop(name))
            continue  # removed by an applied change
        lines.append(chunk)
    lines.extend(new_lines.values())  # added packages
    return ("\n".join(lines) + "\n").encode("utf-8")


def pin_requirement(path: str, data: bytes | None, name: str, version: str) -> bytes:
    """The requirement file with `name` pinned to `version` (its line replaced).

    :raises PartialStateError: not a requirements file, or `name` is not in it.
    """
    if data is not None and _is_pyproject(path):
        try:
            return edit_bytes(data, lambda text: pin_package(text, name, version))
        except EditError as exc:
            raise PartialStateError(f"{path}: {exc}") from exc
    if data is None or not _is_requirements(path):
        raise PartialStateError(f"{path}: cannot pin {name} there")
    lines, found = [], False
    for found_name, chunk in logical_lines(data.decode("utf-8")):
        if found_name == name:
            chunk, found = pinned(chunk, version), True
        lines.append(chunk)
    if not found:
        raise PartialStateError(f"{path}: {name} is not in it")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _partial_config(path: str, old: bytes | None, on: list[Change]) -> bytes:
    if old is None or any(c.name == WHOLE_FILE for c in on):
        raise PartialStateError(f"{path}: the file changes as a whole")
    doc, error = _load(path, old)
    if error is not None:
        raise PartialStateError(f"{path}: {error}")
    doc = copy.deepcopy(doc) if doc is not None else {}
    # Removals first, last list item first (so no item moves), then the sets: a key that
    # turns from `{}` into a mapping with keys is a removal of `{}` plus added keys.
    ordered = sorted(on, key=lambda c: natural_order(c.name))
    try:
        for c in reversed([c for c in ordered if c.new is None]):
            doc = remove_leaf(doc, c.name)
        for c in ordered:
            if c.new is not None:
                doc = set_leaf(doc, c.name, json.loads(c.new))
    except ValueError as exc:
        raise PartialStateError(f"{path}: {exc}") from exc
    if _is_json(path):  # its program reads it with a JSON parser, not a YAML one
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False).encode("utf-8")


def versions_between(available: Iterable[str], old: str, new: str) -> list[str]:
    """The versions strictly between `old` and `new`, in the direction of the change."""
    try:
        lo, hi = Version(old), Version(new)
    except InvalidVersion:
        return []
    found: set[Version] = set()
    for v in available:
        try:
            parsed = Version(v)
        except InvalidVersion:
            continue
        if min(lo, hi) < parsed < max(lo, hi) and not parsed.is_prerelease:
            found.add(parsed)
    return [str(v) for v in sorted(found, reverse=hi < lo)]
