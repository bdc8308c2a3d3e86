"""Textual edits of a pyproject.toml's dependency arrays that keep every other byte.

tomllib reads but does not write, and regenerating the file would lose its comments and
layout. So `pyproject_scan` finds where each string literal of the dependency arrays
sits, and the edits here replace, delete or insert just those literals. Every edit is
checked by parsing the result: the dependency arrays must be exactly what was asked for
and the rest of the document unchanged, else `EditError` (the caller treats the state as
unbuildable rather than guess).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Collection
from typing import Any

from packaging.requirements import Requirement

from bisector.isolate.pyproject_scan import DepArray, EditError, Entry, Group, dependency_arrays

__all__ = ["EditError", "apply_packages", "dependency_arrays", "edit_bytes", "pin_package"]


Edit = tuple[int, int, str]  # replace text[start:end] with the string


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of the whole line(s) of an entry alone on its line (with its comma and
    comment), else None."""
    begin = text.rfind("\n", 0, start) + 1
    if text[begin:start].strip(" \t"):
        return None
    j = end
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == ",":
        j += 1
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "#":
        nl = text.find("\n", j)
        j = len(text) if nl < 0 else nl
    if j < len(text) and text[j] == "\r":
        j += 1
    if j < len(text) and text[j] != "\n":
        return None
    return begin, min(j + 1, len(text))


def _deletion(text: str, entry: Entry) -> Edit:
    whole = _line_bounds(text, entry.start, entry.end)
    if whole is not None:
        return whole[0], whole[1], ""
    j = entry.end
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == ",":
        j += 1
        while j < len(text) and text[j] in " \t":
            j += 1
        return entry.start, j, ""
    i = entry.start  # the last entry: take the comma before it
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    if i > 0 and text[i - 1] == ",":
        i -= 1
    return i, entry.end, ""


def _insertions(text: str, array: DepArray, kept: list[Entry], raws: list[str]) -> list[Edit]:
    if not raws:
        return []
    close_line = text.rfind("\n", 0, array.close) + 1
    multiline = "\n" in text[array.open : array.close] and not text[close_line : array.close].strip(
        " \t"
    )
    edits: list[Edit] = []
    if multiline:
        first = kept[0] if kept else (array.entries[0] if array.entries else None)
        indent = "    "
        if first is not None:
            begin = text.rfind("\n", 0, first.start) + 1
            if not text[begin : first.start].strip(" \t"):
                indent = text[begin : first.start]
        if kept:
            j = kept[-1].end
            while j < len(text) and text[j] in " \t":
                j += 1
            if text[j : j + 1] != ",":
                edits.append((kept[-1].end, kept[-1].end, ","))
        edits.append((close_line, close_line, "".join(f"{indent}{raw},\n" for raw in raws)))
    elif kept:
        edits.append((kept[-1].end, kept[-1].end, "".join(f", {raw}" for raw in raws)))
    else:
        edits.append((array.open + 1, array.open + 1, ", ".join(raws)))
    return edits


def _apply(text: str, edits: list[Edit]) -> str:
    ordered = sorted(edits, key=lambda e: (e[0], e[1]))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b[0] < a[1]:
            raise EditError("overlapping edits of a dependency array")
    out, at = [], 0
    for start, end, repl in ordered:
        out += [text[at:start], repl]
        at = end
    out.append(text[at:])
    return "".join(out)


def _values(doc: dict[str, Any]) -> dict[Group, list[str]]:
    project = doc.get("project", {})
    out: dict[Group, list[str]] = {}
    if isinstance(project, dict):
        if isinstance(project.get("dependencies"), list):
            out[None] = [str(v) for v in project["dependencies"]]
        optional = project.get("optional-dependencies", {})
        if isinstance(optional, dict):
            out.update({k: [str(x) for x in v] for k, v in optional.items() if isinstance(v, list)})
    return out


def _without_deps(doc: dict[str, Any]) -> dict[str, Any]:
    project = dict(doc.get("project", {}))
    project.pop("dependencies", None)
    if isinstance(project.get("optional-dependencies"), dict):
        project["optional-dependencies"] = {
            k: v for k, v in project["optional-dependencies"].items() if not isinstance(v, list)
        }
    return {**doc, "project": project}


def _checked(old_text: str, result: str, expected: dict[Group, list[str]]) -> str:
    try:
        before, after = tomllib.loads(old_text), tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise EditError(f"the edited pyproject.toml does not parse: {exc}") from exc
    if _values(after) != expected or _without_deps(after) != _without_deps(before):
        raise EditError("the edited pyproject.toml does not hold the asked-for dependencies")
    return result


def _name(value: str) -> str | None:
    return Entry(0, 0, value).name


def apply_packages(old_text: str, new_text: str, names: Collection[str]) -> str:
    """`old_text` with the requirements of `names` (canonical) in every dependency array
    taken from `new_text` (replaced, removed, or appended at the array's end).

    :raises EditError: unsupported syntax, a group that only one side has, or a failed check.
    """
    old_arrays, new_arrays = dependency_arrays(old_text), dependency_arrays(new_text)
    wanted = set(names)
    edits: list[Edit] = []
    expected: dict[Group, list[str]] = {}
    for group in sorted(set(old_arrays) | set(new_arrays), key=lambda g: (g is not None, g or "")):
        new_entries = [
            e
            for e in (new_arrays[group].entries if group in new_arrays else ())
            if e.name in wanted
        ]
        if group not in old_arrays:
            if new_entries:
                raise EditError(f"dependency group {group!r} is new: cannot take part of it")
            continue
        array = old_arrays[group]
        expected[group] = []
        kept: list[Entry] = []
        todo = {n: [e for e in new_entries if e.name == n] for n in wanted}
        for entry in array.entries:
            name = entry.name
            if name not in wanted or name is None:
                kept.append(entry)
                expected[group].append(entry.value)
                continue
            if todo[name]:
                repl = todo[name].pop(0)
                edits.append((entry.start, entry.end, new_text[repl.start : repl.end]))
                kept.append(entry)
                expected[group].append(repl.value)
            else:
                edits.append(_deletion(old_text, entry))
        left = {e.start for xs in todo.values() for e in xs}
        rest = [e for e in new_entries if e.start in left]  # in the culprit's order
        edits += _insertions(old_text, array, kept, [new_text[e.start : e.end] for e in rest])
        expected[group].extend(e.value for e in rest)
    return _checked(old_text, _apply(old_text, edits), expected)


def pin_package(text: str, name: str, version: str) -> str:
    """`text` with every requirement of `name` pinned to `version` (extras, marker kept).

    :raises EditError: `name` is in no dependency array, or a failed check.
    """
    arrays = dependency_arrays(text)
    expected = _values(tomllib.loads(text))
    edits: list[Edit] = []
    for group, array in arrays.items():
        for k, entry in enumerate(array.entries):
            if entry.name != name:
                continue
            req = Requirement(entry.value)
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            marker = f"; {req.marker}" if req.marker else ""
            pinned = f"{req.name}{extras}=={version}{marker}"
            edits.append((entry.start, entry.end, json.dumps(pinned)))
            expected[group] = [pinned if i == k else v for i, v in enumerate(expected[group])]
    if not edits:
        raise EditError(f"{name} is in no dependency array of pyproject.toml")
    return _checked(text, _apply(text, edits), expected)


def edit_bytes(data: bytes, edit: Callable[[str], str]) -> bytes:
    """Decode, edit, encode (UTF-8); a file that is not UTF-8 raises `EditError`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditError("pyproject.toml is not UTF-8") from exc
    return edit(text).encode("utf-8")
