"""The one naming of YAML/JSON keys: flatten a document to key paths, and back.

Every command that names a config key (`snapshot diff`, `rollback --dry-run`, isolation's
`culprit.config_keys`) flattens with this module, so a key has one name everywhere.

The rule (documented in docs/json.md):

* mapping keys are joined with `.`: `batching.dynamic`;
* list items are indexed in brackets: `models[0].name`, `grid[1][0]` (a mapping key
  made of digits stays a key: `ports.8080`, so `{"a": ["x"]}` and `{"a": {"0": "x"}}`
  have different names);
* a key that contains `.`, `[`, `]` or `\\` has them escaped with `\\`: `{"a.b": 1}` is
  `a\\.b`, never `a.b`; the empty key is written `""` (and a key that is literally
  `""` as `\\""`);
* the leaves are the scalars; an empty mapping or list is a leaf `{}` / `[]`;
* a whole-document scalar is the single key `""`; an empty document (null) has no keys.

`flatten` and `unflatten` are exact inverses for documents whose mapping keys are
strings. A non-string key (YAML `1: x`, `true: y`) is named by `str(key)`;
`set_leaf` / `remove_leaf` find such a key again by that name in an existing document.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "KeyDiff",
    "Segment",
    "diff_flat",
    "escape_key",
    "flatten",
    "format_path",
    "natural_order",
    "parse_path",
    "remove_leaf",
    "set_leaf",
    "unflatten",
]

Segment = str | int  # a mapping key, or a list index
_SPECIAL = frozenset(".[]\\")
_EMPTY = '""'


def escape_key(name: str) -> str:
    """One mapping key as it appears in a path."""
    if name == "":
        return _EMPTY
    if name == _EMPTY:
        return '\\""'
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in name)


def _join(prefix: str, segment: Segment) -> str:
    if isinstance(segment, int):
        return f"{prefix}[{segment}]"
    name = escape_key(segment)
    return f"{prefix}.{name}" if prefix else name


def format_path(segments: Iterable[Segment]) -> str:
    """The path text of `segments`; `()` (the document itself) is `""`."""
    out = ""
    for seg in segments:
        out = _join(out, seg)
    return out


def parse_path(text: str) -> tuple[Segment, ...]:
    """The segments of a path written by `format_path`.

    :raises ValueError: `text` is not such a path (a dangling `\\`, an empty key, ...).
    """
    segs: list[Segment] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "[":
            close = text.find("]", i)
            digits = text[i + 1 : close] if close > 0 else ""
            if not digits.isdigit() or not digits.isascii():
                raise ValueError(f"bad list index in key path {text!r}")
            segs.append(int(digits))
            i = close + 1
            continue
        if segs:
            if text[i] != ".":
                raise ValueError(f"expected '.' or '[' at {i} in key path {text!r}")
            i += 1
        start, buf = i, []
        while i < n and text[i] not in ".[":
            if text[i] == "\\":
                if i + 1 >= n:
                    raise ValueError(f"dangling '\\' in key path {text!r}")
                i += 1
            elif text[i] == "]":
                raise ValueError(f"unescaped ']' in key path {text!r}")
            buf.append(text[i])
            i += 1
        raw = text[start:i]
        if raw == "":
            raise ValueError(f'empty key in key path {text!r} (write it as "")')
        segs.append("" if raw == _EMPTY else "".join(buf))
    return tuple(segs)


def flatten(doc: Any) -> dict[str, Any]:
    """Key path -> leaf value, in document order (see the module docstring)."""
    out: dict[str, Any] = {}
    if doc is not None:
        _walk(doc, "", out, root=True)
    return out


def _walk(node: Any, prefix: str, out: dict[str, Any], *, root: bool = False) -> None:
    if isinstance(node, Mapping):
        if not node and not root:
            out[prefix] = {}
        for key, value in node.items():
            _walk(value, _join(prefix, key if isinstance(key, str) else str(key)), out)
    elif isinstance(node, list):
        if not node and not root:
            out[prefix] = []
        for i, value in enumerate(node):
            _walk(value, _join(prefix, i), out)
    else:
        out[prefix] = node


class _Seq(dict[int, Any]):
    """A list under construction: items by index, made a list once all are in."""


def unflatten(flat: Mapping[str, Any]) -> Any:
    """The document `flatten` gave `flat` for (`{}` for no keys).

    :raises ValueError: a key is not a path, or two keys disagree (`a` and `a.b`, or a
        list whose indexes are not 0..n-1).
    """
    if "" in flat:
        if len(flat) > 1:
            raise ValueError("a whole-document value cannot have other keys")
        return flat[""]
    top: dict[Any, Any] = {}  # holds the document under the key None
    for key, value in flat.items():
        segs: tuple[Segment | None, ...] = (None, *parse_path(key))
        node = top
        for seg, nxt in zip(segs, segs[1:], strict=False):
            child = node.get(seg)
            if child is None:
                child = node[seg] = _Seq() if isinstance(nxt, int) else {}
            elif isinstance(child, _Seq) != isinstance(nxt, int) or isinstance(child, _Leaf):
                raise ValueError(f"{key!r} goes through a leaf or the wrong kind of container")
            node = child
        if segs[-1] in node:
            raise ValueError(f"{key!r} is both a leaf and a container")
        node[segs[-1]] = _Leaf(value)
    return _finish(top[None]) if top else {}


@dataclass(frozen=True)
class _Leaf:
    value: Any


def _finish(node: Any) -> Any:
    if isinstance(node, _Leaf):
        return node.value
    if isinstance(node, _Seq):
        if sorted(node) != list(range(len(node))):
            raise ValueError(f"list indexes {sorted(node)} are not 0..{len(node) - 1}")
        return [_finish(node[i]) for i in range(len(node))]
    return {k: _finish(v) for k, v in node.items()}


# --- editing a document in place (isolation's partial states) ------------------------


def _child_key(node: Mapping[Any, Any], name: str) -> Any:
    """The existing key of `node` named `name` (a non-string key keeps its type)."""
    if name in node:
        return name
    return next((k for k in node if not isinstance(k, str) and str(k) == name), name)


def set_leaf(doc: Any, key: str, value: Any) -> Any:
    """`doc` with the leaf at `key` set to `value`, creating the containers on the way.

    A list grows only by one item at its end. Returns the (possibly new) root.
    :raises ValueError: the path goes through a scalar's place in an incompatible way.
    """
    segs = parse_path(key)
    if not segs:
        return value
    root = doc if isinstance(doc, dict | list) else ([] if isinstance(segs[0], int) else {})
    node: Any = root
    for seg, nxt in zip(segs, (*segs[1:], None), strict=True):
        if isinstance(seg, int):
            if not isinstance(node, list) or seg > len(node):
                raise ValueError(f"cannot set {key}: no list item {seg} to put it at")
            if seg == len(node):
                node.append(None)
            slot: Any = seg
        else:
            if not isinstance(node, dict):
                raise ValueError(f"cannot set {key}: {seg!r} is not a mapping key here")
            slot = _child_key(node, seg)
        if nxt is None:
            node[slot] = value
            return root
        want: type = list if isinstance(nxt, int) else dict
        if not isinstance(node[slot] if isinstance(node, list) else node.get(slot), want):
            node[slot] = want()
        node = node[slot]
    return root


def remove_leaf(doc: Any, key: str) -> Any:
    """`doc` without the leaf at `key` (absent: unchanged). Only a list's last item can go.

    :raises ValueError: `key` is a list item before the end (the later items would shift).
    """
    segs = parse_path(key)
    if not segs:
        return None
    node: Any = doc
    for seg in segs[:-1]:
        if isinstance(seg, int):
            if not isinstance(node, list) or seg >= len(node):
                return doc
            node = node[seg]
        elif isinstance(node, dict) and _child_key(node, seg) in node:
            node = node[_child_key(node, seg)]
        else:
            return doc
    last = segs[-1]
    if isinstance(last, int) and isinstance(node, list) and last < len(node):
        if last != len(node) - 1:
            raise ValueError(f"cannot remove {key} alone: the items after it would move")
        node.pop()
    elif isinstance(last, str) and isinstance(node, dict):
        node.pop(_child_key(node, last), None)
    return doc


# --- comparing two flattened documents -----------------------------------------------


class _Missing(enum.Enum):
    MISSING = enum.auto()


def natural_order(key: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key of a path: list indexes and numeric keys by number, then names."""
    try:
        segs = parse_path(key)
    except ValueError:
        return ((3, 0, key),)
    return tuple(
        (0, s, "")
        if isinstance(s, int)
        else (1, int(s), s)
        if s.isdigit() and s.isascii()
        else (2, 0, s)
        for s in segs
    )


KeyChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class KeyDiff:
    """One key that differs: `old` / `new` are None on the side where it is absent."""

    key: str
    change: KeyChangeKind
    old: Any = None
    new: Any = None


def diff_flat(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[KeyDiff]:
    """Keys added, removed and changed from `old` to `new`, in natural order.

    A change of type is a change even where Python calls the values equal (`1` vs
    `1.0` vs `true` mean different things to the service reading the YAML).
    """
    out: list[KeyDiff] = []
    for key in sorted(old.keys() | new.keys(), key=natural_order):
        a, b = old.get(key, _Missing.MISSING), new.get(key, _Missing.MISSING)
        if a is _Missing.MISSING:
            out.append(KeyDiff(key, "added", None, b))
        elif b is _Missing.MISSING:
            out.append(KeyDiff(key, "removed", a, None))
        elif a != b or type(a) is not type(b):
            out.append(KeyDiff(key, "changed", a, b))
    return out
