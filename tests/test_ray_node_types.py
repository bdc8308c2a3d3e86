"""Which node types a ray run measures on, and on which type each commit is read (no Ray)."""

from __future__ import annotations

from bisector.executors.node_types import Pins, run_node_types

CLUSTER = {"CPU": 8.0, "accelerator_type:A100": 1.0, "accelerator_type:H100": 1.0}


def test_a_named_type_wins_then_named_types_then_the_clusters_accelerators() -> None:
    """node_type pins one kind; node_types several; neither: the cluster's accelerator types
    when there are two or more, unless the trial's shape already asks for one."""
    assert run_node_types("x", [], CLUSTER) == ["x"]
    assert run_node_types(None, ["a", "b"], CLUSTER) == ["a", "b"]
    assert run_node_types(None, [], CLUSTER) == ["accelerator_type:A100", "accelerator_type:H100"]
    assert run_node_types(None, [], CLUSTER, ["accelerator_type:H100"]) == [None]
    assert run_node_types(None, [], {"CPU": 8.0, "accelerator_type:A100": 1.0}) == [None]


def test_candidates_take_types_in_turn_and_references_are_read_on_the_candidates() -> None:
    """New commits take the types in turn, a resumed one keeps the type holding its trials,
    and a reference of the comparison is read on the view's type, not its own."""
    pins = Pins(["a", "b"])
    assert [pins.pin(s, lambda _t: 0) for s in ("p1", "p2", "p3")] == ["a", "b", "a"]
    assert pins.pin("old", lambda t: 5 if t == "b" else 1) == "b"
    assert pins.pin("p2", lambda _t: 9) == "b"  # kept once chosen
    pins.view, pins.refs = "b", frozenset({"p1"})
    assert pins.type_for("p1") == "b" and pins.type_for("p3") == "a"
    assert pins.type_for("unpinned") == "b"
    one = Pins([None])
    assert not one.mixed and one.pin("x", lambda _t: 0) is None
