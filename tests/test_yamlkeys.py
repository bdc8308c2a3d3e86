"""The one key-path rule: flatten/unflatten are inverses, escaping, editing and key diffs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bisector.plumbing.yamlkeys import (
    KeyDiff,
    diff_flat,
    flatten,
    format_path,
    parse_path,
    remove_leaf,
    set_leaf,
    unflatten,
)

# keys made of the characters that matter to the rule, plus ordinary ones
_KEYS = st.text(alphabet=st.sampled_from(list('ab01.\\[]"_ -é')), max_size=6)
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
)
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)
_ROOTS = st.dictionaries(_KEYS, _DOCS, max_size=4)


@settings(max_examples=400, deadline=None)
@given(_ROOTS)
def test_unflatten_inverts_flatten(doc: dict[str, Any]) -> None:
    """Any mapping document, whatever its keys hold, comes back from its flattening."""
    flat = flatten(doc)
    assert unflatten(flat) == doc
    assert flatten(unflatten(flat)) == flat


@settings(max_examples=200, deadline=None)
@given(_ROOTS)
def test_a_yaml_round_trip_keeps_the_key_names(doc: dict[str, Any]) -> None:
    """Dumping to YAML and loading again names every leaf the same."""
    assert flatten(yaml.safe_load(yaml.safe_dump(doc))) == flatten(doc)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_KEYS, st.integers(min_value=0, max_value=12)), max_size=5))
def test_parse_path_inverts_format_path(segments: list[str | int]) -> None:
    """Every sequence of keys and indexes has one path text that parses back to it."""
    assert parse_path(format_path(segments)) == tuple(segments)


def test_the_rule_names_dots_lists_and_escapes() -> None:
    """Mapping keys join with '.', list items are [i], and '.' '[' ']' '\\' in a key are escaped."""
    doc = {"a.b": 1, "a": {"b": [10, {"c": 2}], "0": 3}, "w\\x[1]": 4, "": 5, "e": {}, "l": []}
    assert flatten(doc) == {
        "a\\.b": 1,
        "a.b[0]": 10,
        "a.b[1].c": 2,
        "a.0": 3,
        "w\\\\x\\[1\\]": 4,
        '""': 5,
        "e": {},
        "l": [],
    }
    assert flatten("just text") == {"": "just text"} and flatten(None) == {}


@pytest.mark.parametrize("bad", ["a.", ".a", "a[x]", "a\\", "a]b", "a[1", "a..b"])
def test_parse_path_rejects_what_format_path_never_writes(bad: str) -> None:
    """Dangling escapes, empty keys and malformed indexes are errors, not guesses."""
    with pytest.raises(ValueError):
        parse_path(bad)


def test_unflatten_rejects_disagreeing_keys() -> None:
    """A key that is both a leaf and a container, or a list with a hole, is an error."""
    for flat in ({"a": 1, "a.b": 2}, {"a.b": 2, "a": 1}, {"a[1]": 1}, {"a[0]": 1, "a.b": 2}):
        with pytest.raises(ValueError):
            unflatten(flat)


def test_set_and_remove_leaf_edit_a_document_in_place() -> None:
    """A dotted key is set as one key; lists grow at the end; non-string keys are found by name."""
    doc: Any = {"a.b": 1, "a": {"c": 2}, 8080: {"on": False}, "l": [1, 2]}
    doc = set_leaf(doc, "a\\.b", 5)
    doc = set_leaf(doc, "8080.on", True)
    doc = set_leaf(doc, "l[2]", 3)
    doc = set_leaf(doc, "new.x[0].y", 1)
    assert doc == {
        "a.b": 5,
        "a": {"c": 2},
        8080: {"on": True},
        "l": [1, 2, 3],
        "new": {"x": [{"y": 1}]},
    }
    doc = remove_leaf(doc, "l[2]")
    doc = remove_leaf(doc, "a.c")
    doc = remove_leaf(doc, "missing.key")
    assert doc == {"a.b": 5, "a": {}, 8080: {"on": True}, "l": [1, 2], "new": {"x": [{"y": 1}]}}
    with pytest.raises(ValueError):
        remove_leaf(doc, "l[0]")  # the item after it would move into its place
    with pytest.raises(ValueError):
        set_leaf(doc, "l[5]", 1)


def test_diff_flat_names_added_removed_and_changed_in_natural_order() -> None:
    """Type changes count; indexes sort by number."""
    old = {"a[2]": 1, "a[10]": 1, "b": 1, "c": True}
    new = {"a[2]": 1.0, "a[10]": 2, "c": True, "d": None}
    assert diff_flat(old, new) == [
        KeyDiff("a[2]", "changed", 1, 1.0),
        KeyDiff("a[10]", "changed", 1, 2),
        KeyDiff("b", "removed", 1, None),
        KeyDiff("d", "added", None, None),
    ]
