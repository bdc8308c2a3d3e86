"""Where the dependency arrays of a pyproject.toml sit in its text.

tomllib reads values but not positions, so a small scanner walks the TOML text (table
headers, dotted keys, strings, arrays, inline tables, comments) and records where each
string literal of `[project].dependencies` and `[project].optional-dependencies.<group>`
sits. `pyproject_edit` replaces, deletes or inserts just those literals.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = ["DepArray", "EditError", "Entry", "Group", "dependency_arrays"]

Group = str | None  # None: [project].dependencies; else the optional-dependencies group


class EditError(ValueError):
    """The file cannot be edited textually (unsupported syntax, or the check failed)."""


@dataclass(frozen=True)
class Entry:
    """One string literal of a dependency array: its span in the text and its value."""

    start: int
    end: int
    value: str

    @property
    def name(self) -> str | None:
        try:
            return canonicalize_name(Requirement(self.value).name)
        except InvalidRequirement:
            return None


@dataclass(frozen=True)
class DepArray:
    """A dependency array: the positions of its brackets and its string entries."""

    group: Group
    open: int
    close: int
    entries: tuple[Entry, ...]


_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.t, self.i = text, 0
        self.arrays: dict[Group, DepArray] = {}

    def peek(self, k: int = 1) -> str:
        return self.t[self.i : self.i + k]

    def fail(self, what: str) -> EditError:
        line = self.t.count("\n", 0, self.i) + 1
        return EditError(f"pyproject.toml line {line}: {what}")

    def ws(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def ws_nl(self) -> None:
        while self.i < len(self.t):
            c = self.t[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#":
                self.comment()
            else:
                return

    def comment(self) -> None:
        end = self.t.find("\n", self.i)
        self.i = len(self.t) if end < 0 else end

    def string(self) -> Entry:
        start, t = self.i, self.t
        for quote in ('"""', "'''", '"', "'"):
            if t.startswith(quote, start):
                break
        else:
            raise self.fail("expected a string")
        j = start + len(quote)
        while True:
            if j >= len(t) or (len(quote) == 1 and t[j] == "\n"):
                raise self.fail("unterminated string")
            if quote[0] == '"' and t[j] == "\\":
                j += 2
                continue
            if t.startswith(quote, j):
                j += len(quote)
                while len(quote) == 3 and t[j : j + 1] == quote[0] and j - start < len(t):
                    j += 1  # up to two quotes may close a multi-line string
                break
            j += 1
        self.i = j
        raw = t[start:j]
        try:
            value = tomllib.loads("v = " + raw)["v"]
        except tomllib.TOMLDecodeError as exc:
            raise self.fail(f"bad string {raw!r}") from exc
        return Entry(start, j, str(value))

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.ws()
            if self.peek() in ('"', "'"):
                parts.append(self.string().value)
            else:
                j = self.i
                while j < len(self.t) and self.t[j] in _BARE:
                    j += 1
                if j == self.i:
                    raise self.fail("expected a key")
                parts.append(self.t[self.i : j])
                self.i = j
            self.ws()
            if self.peek() != ".":
                return parts
            self.i += 1

    def value(self, path: list[str]) -> Entry | None:
        c = self.peek()
        if c in ('"', "'"):
            return self.string()
        if c == "[":
            self.array(path)
            return None
        if c == "{":
            self.inline_table(path)
            return None
        j = self.i
        while j < len(self.t) and self.t[j] not in ",]}\n#":
            j += 1
        if j == self.i:
            raise self.fail("expected a value")
        self.i = j
        return None

    def array(self, path: list[str]) -> None:
        open_at = self.i
        self.i += 1
        entries: list[Entry] = []
        while True:
            self.ws_nl()
            if self.peek() == "]":
                break
            entry = self.value([*path, str(len(entries))])
            if entry is not None:
                entries.append(entry)
            self.ws_nl()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "]":
                raise self.fail("expected , or ] in an array")
        close_at = self.i
        self.i += 1
        is_deps, group = _group(path)
        if is_deps:
            self.arrays[group] = DepArray(group, open_at, close_at, tuple(entries))

    def inline_table(self, path: list[str]) -> None:
        self.i += 1
        while True:
            self.ws()
            if self.peek() == "}":
                self.i += 1
                return
            key = self.key()
            if self.peek() != "=":
                raise self.fail("expected = in an inline table")
            self.i += 1
            self.ws()
            self.value([*path, *key])
            self.ws()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "}":
                raise self.fail("expected , or } in an inline table")

    def document(self) -> dict[Group, DepArray]:
        table: list[str] = []
        while True:
            self.ws_nl()
            if self.i >= len(self.t):
                return self.arrays
            if self.peek() == "[":
                double = self.peek(2) == "[["
                self.i += 2 if double else 1
                table = self.key()
                closing = "]]" if double else "]"
                if self.peek(len(closing)) != closing:
                    raise self.fail("bad table header")
                self.i += len(closing)
            else:
                key = self.key()
                if self.peek() != "=":
                    raise self.fail("expected =")
                self.i += 1
                self.ws()
                self.value([*table, *key])
            self.ws()
            if self.peek() == "#":
                self.comment()
            if self.peek() not in ("\n", "\r", ""):
                raise self.fail("expected the end of the line")


def _group(path: list[str]) -> tuple[bool, Group]:
    """(whether `path` is a dependency array, its group)."""
    if path == ["project", "dependencies"]:
        return True, None
    if len(path) == 3 and path[:2] == ["project", "optional-dependencies"]:
        return True, path[2]
    return False, None


def dependency_arrays(text: str) -> dict[Group, DepArray]:
    """Where each dependency array and its string entries sit in `text`.

    :raises EditError: the text is not TOML this scanner understands.
    """
    return _Scanner(text).document()
