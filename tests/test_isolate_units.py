"""Isolation's pure parts: changes between file sets, partial states, and the orchestration."""

from __future__ import annotations

import json

import pytest
import yaml

from bisector.core.types import Verdict
from bisector.isolate.changes import (
    Change,
    PartialStateError,
    config_changes,
    dependency_changes,
    render_files,
    versions_between,
)
from bisector.isolate.plan import State, isolate
from bisector.ports import Check, Expect

REQ = "requirements.txt"
OLD_REQ = b"# pins\nfastpad==1.0.0\nquickjson==1.0.0\ntracelite==0.4.0\n"
NEW_REQ = b"# pins\nfastpad==1.3.0\nquickjson==1.1.0\nnewdep==2.0\n"
CFG = "configs/serving.yaml"
OLD_CFG = b"server:\n  port: 8080\nbatching:\n  pad: false\n  sizes: [1, 2]\n"
NEW_CFG = (
    b"server:\n  port: 8081\nbatching:\n  pad: true\n  sizes: [1, 4]\nlogging:\n  format: json\n"
)


def _deps() -> list[Change]:
    return dependency_changes({REQ: OLD_REQ}, {REQ: NEW_REQ}, [REQ])


def test_dependency_changes_come_from_the_snapshot_diff() -> None:
    """Upgrades, additions and removals of pins are each one change with from/to."""
    got = {(c.name, c.old, c.new, c.change) for c in _deps()}
    assert got == {
        ("fastpad", "1.0.0", "1.3.0", "upgraded"),
        ("quickjson", "1.0.0", "1.1.0", "upgraded"),
        ("newdep", None, "2.0", "added"),
        ("tracelite", "0.4.0", None, "removed"),
    }


def test_partial_requirements_apply_only_the_chosen_packages() -> None:
    """Applying one upgrade and one removal rewrites just those lines of the parent's file."""
    deps = {c.name: c for c in _deps()}
    files = render_files(
        {REQ: OLD_REQ}, {REQ: NEW_REQ}, list(deps.values()), [deps["fastpad"], deps["tracelite"]]
    )
    assert files[REQ] == b"# pins\nfastpad==1.3.0\nquickjson==1.0.0\n"
    every = render_files({REQ: OLD_REQ}, {REQ: NEW_REQ}, list(deps.values()), list(deps.values()))
    assert every[REQ] == NEW_REQ
    none = render_files({REQ: OLD_REQ}, {REQ: NEW_REQ}, list(deps.values()), [])
    assert none[REQ] == OLD_REQ


def test_pins_force_a_version_for_version_bisection() -> None:
    """A pin replaces the package's line with an exact version."""
    deps = _deps()
    files = render_files({REQ: OLD_REQ}, {REQ: NEW_REQ}, deps, deps, pins={"fastpad": "1.2.0"})
    assert b"fastpad==1.2.0\n" in (files[REQ] or b"")
    with pytest.raises(PartialStateError):
        render_files({REQ: OLD_REQ}, {REQ: NEW_REQ}, deps, deps, pins={"unknown": "1"})


def test_hashed_requirements_over_several_lines_are_swapped_and_pinned_whole() -> None:
    """pip-compile --generate-hashes puts each hash on a `\\`-continued line: a partial
    state kept the old fastpad (its first line did not parse alone) while claiming the new
    one, and pinning a version of a `pkg==1 --hash=...` line raised InvalidRequirement."""
    h_old, h_new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    old = (
        f"fastpad==1.0.0 \\\n    --hash={h_old}\nquickjson==1.0.0 --hash={h_old}\n# end\n"
    ).encode()
    new = (
        f"fastpad==1.3.0 \\\n    --hash={h_new}\nquickjson==1.1.0 --hash={h_new}\n# end\n"
    ).encode()
    deps = dependency_changes({REQ: old}, {REQ: new}, [REQ])
    assert [(c.name, c.new) for c in deps] == [("fastpad", "1.3.0"), ("quickjson", "1.1.0")]
    state = render_files({REQ: old}, {REQ: new}, deps, deps[:1])[REQ] or b""
    assert state.decode() == (
        f"fastpad==1.3.0 \\\n    --hash={h_new}\nquickjson==1.0.0 --hash={h_old}\n# end\n"
    )
    pins = {"fastpad": "1.2.0", "quickjson": "1.0.5"}
    state = render_files({REQ: old}, {REQ: new}, deps, deps, pins=pins)[REQ] or b""
    assert state.decode() == "fastpad==1.2.0\nquickjson==1.0.5\n# end\n"


def test_config_changes_are_dotted_keys_and_partial_states_set_them() -> None:
    """Changed, added and list-item keys are found; a subset is applied YAML-aware."""
    changes = config_changes({CFG: OLD_CFG}, {CFG: NEW_CFG})
    assert [(c.name, c.change) for c in changes] == [
        ("batching.pad", "changed"),
        ("batching.sizes[1]", "changed"),
        ("logging.format", "added"),
        ("server.port", "changed"),
    ]
    chosen = [c for c in changes if c.name in ("batching.pad", "logging.format")]
    doc = yaml.safe_load(render_files({CFG: OLD_CFG}, {CFG: NEW_CFG}, changes, chosen)[CFG] or b"")
    assert doc == {
        "server": {"port": 8080},
        "batching": {"pad": True, "sizes": [1, 2]},
        "logging": {"format": "json"},
    }


def test_a_key_holding_a_dot_is_its_own_change_and_is_written_back_as_one_key() -> None:
    """`{"a.b": 1}` is the change `a\\.b`, applied without touching the nested `a: {b: ...}`."""
    old = b'"a.b": 1\na:\n  b: 1\nl: [1, 2, 3]\n'
    new = b'"a.b": 2\na:\n  b: 5\nl: [1]\n'
    changes = config_changes({CFG: old}, {CFG: new})
    assert [(c.name, c.change) for c in changes] == [
        ("a.b", "changed"),
        ("a\\.b", "changed"),
        ("l[1]", "removed"),
        ("l[2]", "removed"),
    ]
    dotted = [c for c in changes if c.name == "a\\.b"]
    doc = yaml.safe_load(render_files({CFG: old}, {CFG: new}, changes, dotted)[CFG] or b"")
    assert doc == {"a.b": 2, "a": {"b": 1}, "l": [1, 2, 3]}
    tail = [c for c in changes if c.name.startswith("l")]
    doc = yaml.safe_load(render_files({CFG: old}, {CFG: new}, changes, tail)[CFG] or b"")
    assert doc == {"a.b": 1, "a": {"b": 1}, "l": [1]}
    with pytest.raises(PartialStateError):  # l[1] alone would move l[2] into its place
        render_files({CFG: old}, {CFG: new}, changes, [c for c in changes if c.name == "l[1]"])


def test_a_partial_state_of_a_json_config_is_written_as_json() -> None:
    """A `.json` config with one of two changes applied is still JSON its program can read
    (it was dumped as YAML), and numbers YAML would take for strings (`1e5`) stay numbers."""
    path = "configs/serving.json"
    old = b'{"server": {"port": 8080, "rate": 1e5}, "batching": {"pad": false}}\n'
    new = b'{"server": {"port": 8081, "rate": 1e5}, "batching": {"pad": true}}\n'
    changes = config_changes({path: old}, {path: new})
    assert [c.name for c in changes] == ["batching.pad", "server.port"]
    files = render_files({path: old}, {path: new}, changes, changes[:1])
    assert json.loads(files[path] or b"") == {
        "server": {"port": 8080, "rate": 100000.0},
        "batching": {"pad": True},
    }


def test_unparseable_config_is_one_whole_file_change_and_cannot_be_split() -> None:
    """A file that does not parse changes as a whole."""
    changes = config_changes({CFG: b"a: [\n"}, {CFG: b"a: 1\n"})
    assert [(c.name, c.change) for c in changes] == [("*", "changed")]


def test_versions_between_keeps_the_direction_and_skips_prereleases() -> None:
    """Only final versions strictly inside the move, ordered from old to new."""
    available = ["1.0.0", "1.1.0", "1.2.0rc1", "1.2.0", "1.3.0", "2.0", "junk"]
    assert versions_between(available, "1.0.0", "1.3.0") == ["1.1.0", "1.2.0"]
    assert versions_between(available, "1.3.0", "1.0.0") == ["1.2.0", "1.1.0"]


class FakeProbe:
    """A probe over a rule: which applied sets are bad, and whether verification holds."""

    def __init__(self, bad: set[str], code_bad: bool = False, verifies: bool = True) -> None:
        self.bad, self.code_bad, self.verifies = bad, code_bad, verifies
        self.states: list[State] = []

    def _is_bad(self, state: State) -> bool:
        names = {c.name for c in state.applied}
        pinned = dict(state.pins)
        if "fastpad" in pinned and pinned["fastpad"] < "1.2.0":
            names.discard("fastpad")
        return (self.code_bad and state.base == "culprit") or self.bad <= names

    def verdict(self, state: State, _phase: str) -> Verdict:
        self.states.append(state)
        return Verdict.BAD if self._is_bad(state) else Verdict.GOOD

    def verify(self, state: State, expect: Expect) -> Check:
        bad = self._is_bad(state)
        passed = self.verifies and (bad if expect == "regressed" else not bad)
        return Check(state.label([]), expect, passed, 0.3 if bad else -0.3, 1.0, 0.001, 5)


def test_isolate_names_a_package_and_its_first_bad_version() -> None:
    """One bad upgrade among four changes, with intermediate versions installable."""
    probe = FakeProbe({"fastpad"})
    result = isolate(_deps(), probe, lambda _name: ["1.0.0", "1.1.0", "1.2.0", "1.3.0"])
    assert result.kind == "dependency"
    assert [d["name"] for d in result.dependencies()] == ["fastpad"]
    assert result.first_bad_versions == {"fastpad": "1.2.0"}
    assert all(v["verified"] for v in result.verification)


def test_code_alone_bad_is_kind_code_and_both_can_be_reported() -> None:
    """Bad code whose changes are bad on the parent's code too: kind code, package still named."""
    probe = FakeProbe({"fastpad"}, code_bad=True)
    result = isolate(_deps(), probe, lambda _name: [])
    assert result.kind == "code"
    assert [d["name"] for d in result.dependencies()] == ["fastpad"]
    only_code = isolate(_deps(), FakeProbe({"nothing"}, code_bad=True), lambda _name: [])
    assert only_code.kind == "code" and only_code.culprits == []
    assert only_code.verification[0]["item"] == "code"


def test_failed_verification_is_reported_unverified() -> None:
    """A culprit whose checks fail stays named, with verified false and a note."""
    result = isolate(_deps(), FakeProbe({"fastpad"}, verifies=False), lambda _name: [])
    (item,) = result.verification
    assert item["verified"] is False and item["note"].startswith("unverified")
    assert json.dumps(result.to_json())  # JSON-safe


def test_states_name_the_code_inside_a_culprit_and_the_sides_on_one_code() -> None:
    """Inside a culprit commit a state names its code (the parent's or the culprit's);
    `bisector deps` / `config --good/--bad` run HEAD's code on both sides, so there the
    steps name the side (`good side + ...`), never a "culprit code" that is not measured."""
    changes = _deps()
    fastpad = next(c for c in changes if c.name == "fastpad")
    one = State("culprit", frozenset({fastpad}), pins=(("fastpad", "1.2.0"),))
    assert State("culprit", frozenset()).label(changes) == "culprit code + no changes"
    assert State("parent", frozenset(changes)).label(changes) == "parent code + all changes"
    assert one.label(changes) == f"culprit code + {fastpad.label}; fastpad==1.2.0"
    assert State("culprit", frozenset()).label(changes, same_code=True) == "good side"
    assert State("parent", frozenset(changes)).label(changes, same_code=True) == "bad side"
    assert one.label(changes, same_code=True) == f"good side + {fastpad.label}; fastpad==1.2.0"
    steps = isolate(changes, FakeProbe({"fastpad"}), lambda _name: [], same_code=True).steps
    assert steps and all(s["state"].startswith(("good side", "bad side")) for s in steps)
