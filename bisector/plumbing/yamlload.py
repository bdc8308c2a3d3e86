"""The one way bisector parses YAML: PyYAML's safe loader with limits.

A committed config file or a bisector.yaml is input we did not write. Two shapes of it
cost far more than their size: an alias bomb ("billion laughs": nine anchors of ten
aliases each expand to 10^9 nodes in any code that walks the document, such as a
flattener or a validator), and deep nesting (PyYAML composes recursively, so 5,000
levels end in a RecursionError, not a YAML error). Both are refused while composing,
before anything walks the document, as an ordinary `yaml.YAMLError`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml
from yaml.composer import ComposerError

__all__ = ["MAX_DEPTH", "MAX_NODES", "LimitedLoader", "YamlLimitError", "safe_load"]

MAX_DEPTH = 100  # nesting levels; real configs stay under 20
MAX_NODES = 200_000  # nodes of the document with every alias expanded


class YamlLimitError(ComposerError):
    """The document is too deep, too large once its aliases are expanded, or recursive."""


class LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents past `MAX_DEPTH` or `max_nodes` (as written, and
    with every alias expanded)."""

    #: `MAX_NODES`; a subclass for one kind of file may lower it (bisector.yaml: a few
    #: hundred nodes; PyYAML composes about 25,000 a second, so 200,000 take 8 s).
    max_nodes: ClassVar[int] = MAX_NODES

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlLimitError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            # Counted as they are read: a document that is simply big (500,000 keys, no
            # alias) stops here, not after all of it was read, and is not said to have
            # aliases (the count below is only passed with them).
            if self._composed > self.max_nodes:
                raise YamlLimitError(
                    None,
                    None,
                    f"more than {self.max_nodes} nodes",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node, self.max_nodes)
        return node


def _check_expanded_size(root: yaml.Node, max_nodes: int) -> None:
    """Count the nodes of `root` as if every alias were copied out, without copying.

    Iterative (no recursion to exhaust) and memoized per node, so a bomb costs one visit
    per distinct node. A node that contains itself (`&a [*a]`) is refused: every walk of
    it would never end.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > max_nodes:
                raise YamlLimitError(
                    None,
                    None,
                    f"more than {max_nodes} nodes once aliases are expanded",
                    node.start_mark,
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlLimitError(
                None, None, "an alias refers to a node that contains it", node.start_mark
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


_BRACKETS = re.compile(r"[\[\]{}]")
_BRACKETS_B = re.compile(rb"[\[\]{}]")


def _flow_depth_exceeded(text: str | bytes) -> bool:
    """Whether flow brackets nest past `MAX_DEPTH` (quotes ignored: a cheap upper bound).

    PyYAML's scanner is quadratic in the depth of flow collections (5,000 `[` cost half a
    second before the composer sees the first node), so they are counted first.
    """
    depth = 0
    pattern = _BRACKETS_B if isinstance(text, bytes) else _BRACKETS
    for match in pattern.finditer(text):  # type: ignore[arg-type]
        depth += 1 if match.group() in ("[", "{", b"[", b"{") else -1
        if depth > MAX_DEPTH:
            return True
    return False


def safe_load(text: str | bytes, loader: type[LimitedLoader] = LimitedLoader) -> Any:
    """`yaml.safe_load` with the limits above.

    :raises yaml.YAMLError: malformed, too deep, too large or recursive.
    """
    if _flow_depth_exceeded(text):
        raise YamlLimitError(None, None, f"nested deeper than {MAX_DEPTH} levels", None)
    instance = loader(text)
    try:
        return instance.get_single_data()
    except (ValueError, OverflowError) as exc:  # a 5,000-digit int, a date like 2024-13-45
        raise yaml.constructor.ConstructorError(None, None, f"cannot read a value: {exc}") from exc
    finally:
        instance.dispose()
