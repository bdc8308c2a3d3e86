"""YAML loaded with the line of every mapping key, so that an error about a value can name
the file, the line and the key (`bisector.yaml:3: benchmark.repats: unknown key`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import yaml

from bisector.plumbing.yamlload import LimitedLoader

__all__ = ["LineLoader", "key_path", "line_of"]


class LineLoader(LimitedLoader):
    """SafeLoader that remembers the line of every mapping key (1-based)."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # A key given twice is refused, not resolved "last one wins" as PyYAML does: a second
    # `benchmark:` further down would silently replace the first. Merge keys (`<<`) may
    # still be overridden by the mapping's own keys, as YAML means them to.
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    mapping = loader.construct_mapping(node, deep=True)
    lines: dict[Any, int] = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    return _LinedDict(mapping, lines)


class _LinedDict(dict[Any, Any]):
    def __init__(self, data: Mapping[Any, Any], lines: dict[Any, int]) -> None:
        super().__init__(data)
        self.lines = lines


LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    line: int | None = None
    node = data
    for part in loc:
        if isinstance(node, _LinedDict) and part in node.lines:
            line = node.lines[part]
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return line


def key_path(loc: tuple[int | str, ...]) -> str:
    """`daemon.alerts[0].retries`: list items in brackets, as docs/config.md writes keys."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return path or "(top level)"
