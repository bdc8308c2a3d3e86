"""Isolation (DESIGN.md steps 6-7): which package, which version, which config key.

Pure orchestration over a `StateProbe` (`bisector.ports`), which measures *states*: a base code (the
culprit's or the parent's) with the parent's dependency and config files and a subset of
the commit's changes applied (`changes.render_files`). The order:

1. **Code alone**: the culprit's code with none of the changes. BAD: the culprit is
   `code`; the changes are then isolated on the parent's code, if they are bad there too
   (both can be reported).
2. **ddmin** over all the changes (packages and keys together, so an interaction of a
   package and a key is found too): a 1-minimal failing set; changes that cannot be
   installed apart are grouped, not blamed (`ddmin.DdminResult.grouped`).
3. **Versions**: a package of that set that moved over several versions installable
   here is bisected over them (`search.Bisection`); the first bad version is named.
4. **Verification** of each item: the bad state with only it reverted (the regression
   must go away) and the good state with it applied (it must appear), each a fresh
   comparison with an effect and a confidence. An item that fails is `verified: false`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bisector.core.ddmin import Outcome, ddmin
from bisector.core.search import Bisection
from bisector.core.types import Verdict
from bisector.isolate.changes import Change, versions_between
from bisector.ports import StateProbe

Base = Literal["culprit", "parent"]


@dataclass(frozen=True)
class State:
    """`base`'s code, the parent's files, `applied` changes, and forced versions."""

    base: Base
    applied: frozenset[Change]
    pins: tuple[tuple[str, str], ...] = ()

    def label(self, all_changes: Sequence[Change], same_code: bool = False) -> str:
        """`culprit code + fastpad 1.0.0 → 1.3.0` inside a culprit commit; with
        `same_code` (`bisector deps`, `config --good/--bad`: HEAD's code on both sides,
        only the files differ) the sides: `good side`, `bad side`, `good side + <changes>`."""
        pins = "".join(f"; {n}=={v}" for n, v in self.pins)
        applied = ", ".join(c.label for c in sorted(self.applied))
        if same_code:
            if len(self.applied) == len(all_changes):
                return f"bad side{pins}"
            return f"good side + {applied}{pins}" if applied else f"good side{pins}"
        if not self.applied:
            applied = "no changes"
        elif len(self.applied) == len(all_changes):
            applied = "all changes"
        return f"{self.base} code + {applied}{pins}"


@dataclass
class Isolation:
    """What isolation found; `to_json` is the document's `isolation` section."""

    changes: list[Change]
    kind: str = "code"
    code_alone: str | None = None
    culprits: list[Change] = field(default_factory=list)
    grouped: list[Change] = field(default_factory=list)
    interacting: list[Change] = field(default_factory=list)
    first_bad_versions: dict[str, str] = field(default_factory=dict)
    version_ranges: dict[str, list[str]] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    verification: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def dependencies(self) -> list[dict[str, Any]]:
        out = []
        for c in self.culprits:
            if c.kind == "dependency":
                item: dict[str, Any] = {"name": c.name, "from": c.old, "to": c.new}
                if c.name in self.first_bad_versions:
                    item["first_bad_version"] = self.first_bad_versions[c.name]
                if c in self.grouped:
                    item["grouped"] = True
                if len(self.culprits) > 1 and c in self.interacting:
                    item["only_together_with"] = [o.label for o in self.culprits if o != c]
                out.append(item)
        return out

    def config_keys(self) -> list[str]:
        return [c.name for c in self.culprits if c.kind == "config"]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "code_alone": self.code_alone,
            "changes": [c.to_json() | {"kind": c.kind} for c in self.changes],
            "culprits": [c.to_json() | {"kind": c.kind} for c in self.culprits],
            "grouped": [c.label for c in self.grouped],
            "interacting": [c.label for c in self.interacting] if len(self.culprits) > 1 else [],
            "first_bad_versions": self.first_bad_versions,
            "versions_tried": self.version_ranges,
            "steps": self.steps,
            "verification": self.verification,
            "notes": self.notes,
        }


_OUTCOME = {Verdict.BAD: Outcome.FAIL, Verdict.GOOD: Outcome.PASS}


def isolate(
    changes: Sequence[Change],
    probe: StateProbe[State],
    available_versions: Callable[[str], list[str]],
    on_verify: Callable[[], None] = lambda: None,
    same_code: bool = False,
) -> Isolation:
    """Split the culprit commit's `changes` (see the module docstring); `on_verify` is
    called once before the verification trials. `same_code`: both sides run one code
    (standalone isolation), and the steps name the sides (`State.label`)."""
    result = Isolation(list(changes))
    everything = frozenset(changes)

    def measure(state: State, phase: str) -> Verdict:
        verdict = probe.verdict(state, phase)
        result.steps.append(
            {"phase": phase, "state": state.label(changes, same_code), "verdict": verdict.value}
        )
        return verdict

    if not changes:
        result.notes.append("the commit changes no dependency pins or config keys")
        return result
    # With one code on both sides the culprit's code alone IS the good side: measuring it
    # would only add trials to the good reference and judge it against itself.
    code_alone = (
        Verdict.GOOD if same_code else measure(State("culprit", frozenset()), "isolate-code")
    )
    result.code_alone = None if same_code else code_alone.value
    base: Base = "culprit"
    if code_alone is Verdict.BAD:
        result.kind = "code"
        if measure(State("parent", everything), "isolate-changes") is not Verdict.BAD:
            result.notes.append(
                "the culprit's code alone is bad; its dependency/config changes alone are not"
            )
            _verify_code(result, probe, on_verify)
            return result
        base = "parent"
        result.notes.append("both the code and the dependency/config changes are bad on their own")
    elif code_alone is not Verdict.GOOD:
        result.notes.append(
            f"the culprit's code alone is {code_alone.value}: the code may contribute"
        )

    def test(subset: tuple[Change, ...]) -> Outcome:
        verdict = measure(State(base, frozenset(subset)), "isolate-ddmin")
        return _OUTCOME.get(verdict, Outcome.UNRESOLVED)

    found = ddmin(list(changes), test)
    result.culprits = list(found.failing)
    result.grouped = list(found.grouped)
    result.interacting = list(found.interacting)
    if found.grouped:
        result.notes.append(
            "cannot be installed apart, grouped rather than blamed: "
            + ", ".join(c.label for c in found.grouped)
        )
    if code_alone is not Verdict.BAD:
        result.kind = (
            "dependency" if any(c.kind == "dependency" for c in found.failing) else "config"
        )
    for change in found.failing:
        _bisect_versions(
            result, change, base, frozenset(found.failing), available_versions, measure
        )
    on_verify()
    for change in found.failing:
        result.verification.append(_verify_item(change, found.failing, base, everything, probe))
    return result


def _bisect_versions(
    result: Isolation,
    change: Change,
    base: Base,
    failing: frozenset[Change],
    available_versions: Callable[[str], list[str]],
    measure: Callable[[State, str], Verdict],
) -> None:
    if change.kind != "dependency" or change.old is None or change.new is None:
        return
    if change.change not in ("upgraded", "downgraded"):
        return
    middle = versions_between(available_versions(change.name), change.old, change.new)
    if not middle:
        return
    candidates = [change.old, *middle, change.new]
    result.version_ranges[change.name] = candidates
    search = Bisection(len(candidates))
    while (index := search.next_probe()) is not None:
        state = State(base, failing, pins=((change.name, candidates[index]),))
        search.record(index, measure(state, "isolate-version"))
    found = search.result()
    if found.found:
        result.first_bad_versions[change.name] = candidates[found.first_bad]
    else:
        result.notes.append(
            f"{change.name}: first bad version between {candidates[found.last_good]} "
            f"and {candidates[found.first_bad]} (untestable in between)"
        )


def _verify_item(
    change: Change,
    failing: Sequence[Change],
    base: Base,
    everything: frozenset[Change],
    probe: StateProbe[State],
) -> dict[str, Any]:
    reverted = probe.verify(State(base, everything - {change}), "recovered")
    applied_set = frozenset(failing)
    applied = probe.verify(State("parent", applied_set), "regressed")
    verified = reverted.passed and applied.passed
    doc: dict[str, Any] = {
        "item": change.label,
        "kind": change.kind,
        "name": change.name,
        "reverted": reverted.to_json(),
        "applied": applied.to_json(),
        "verified": verified,
    }
    if len(failing) > 1:
        doc["note"] = "applied together with " + ", ".join(c.label for c in failing if c != change)
    if not verified:
        doc["note"] = (doc.get("note", "") + "; " if "note" in doc else "") + (
            "unverified: "
            + (
                "reverting it did not remove the regression"
                if not reverted.passed
                else "applying it to the good state did not bring the regression"
            )
        )
    return doc


def _verify_code(
    result: Isolation, probe: StateProbe[State], on_verify: Callable[[], None]
) -> None:
    on_verify()
    reverted = probe.verify(State("parent", frozenset(result.changes)), "recovered")
    applied = probe.verify(State("culprit", frozenset()), "regressed")
    result.verification.append(
        {
            "item": "code",
            "kind": "code",
            "name": "code",
            "reverted": reverted.to_json(),
            "applied": applied.to_json(),
            "verified": reverted.passed and applied.passed,
        }
    )
