"""What the run found about its culprit: the judged shifts, the verification, the isolation.

Parts whose shape belongs to another module (an isolation's changes and per-item checks)
stay JSON mappings; see `bisector.document` for the rules every part follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bisector.document._json import Json, maps, opt_float, strs


@dataclass(frozen=True)
class Comparison:
    """A judged shift between two sets of samples (`details.reproduction`, verification)."""

    p_value: float | None
    effect: float | None
    ci: tuple[float | None, float | None] | None  # None bounds: too wide to bound
    relative_effect: float | None
    significant: bool | None
    regressed: bool | None

    @classmethod
    def of(
        cls,
        *,
        p_value: float,
        effect: float,
        ci: Sequence[float],
        relative_effect: float,
        significant: bool,
        regressed: bool,
    ) -> Comparison:
        """From the judge's numbers; JSON has no infinities, so an unbounded side is None."""
        low, high = (x if math.isfinite(x) else None for x in ci)
        return cls(p_value, effect, (low, high), relative_effect, significant, regressed)

    def to_json(self) -> Json:
        return {
            "p_value": self.p_value,
            "effect": self.effect,
            "ci": None if self.ci is None else list(self.ci),
            "relative_effect": self.relative_effect,
            "significant": self.significant,
            "regressed": self.regressed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        ci = data.get("ci")
        bounds = (
            (opt_float(ci[0]), opt_float(ci[1]))
            if isinstance(ci, Sequence) and len(ci) == 2
            else None
        )
        return cls(
            opt_float(data.get("p_value")),
            opt_float(data.get("effect")),
            bounds,
            opt_float(data.get("relative_effect")),
            data.get("significant"),
            data.get("regressed"),
        )


@dataclass(frozen=True)
class Dependency:
    """A package change the culprit is made of (from isolation)."""

    name: str
    from_version: str | None
    to_version: str | None
    first_bad_version: str | None = None
    grouped: bool = False  # could not be split from the changes it came with
    only_together_with: tuple[str, ...] | None = None  # slow only together with these
    verified: bool | None = None  # None: never checked (key absent)

    def to_json(self) -> Json:
        out: Json = {"name": self.name, "from": self.from_version, "to": self.to_version}
        if self.first_bad_version is not None:
            out["first_bad"] = self.first_bad_version  # the contract's name
            out["first_bad_version"] = self.first_bad_version  # its earlier name, still read
        if self.grouped:
            out["grouped"] = True
        if self.only_together_with is not None:
            out["only_together_with"] = list(self.only_together_with)
        if self.verified is not None:
            out["verified"] = self.verified
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Dependency:
        together = data.get("only_together_with")
        return cls(
            str(data.get("name") or ""),
            data.get("from"),
            data.get("to"),
            data.get("first_bad_version") or data.get("first_bad"),
            bool(data.get("grouped")),
            None if together is None else strs(together),
            data.get("verified"),
        )


@dataclass(frozen=True)
class Culprit:
    """The first bad commit and, after isolation, what inside it is to blame."""

    commit: str
    subject: str
    kind: str  # code | dependency | config (what isolation found)
    effect: float | None
    confidence: float
    verified: bool
    dependencies: tuple[Dependency, ...] = ()
    config_keys: tuple[str, ...] = ()
    share: float | None = None  # optional in the contract; emitted only when known
    isolated: bool = False  # isolation's fields were folded in: `items_verified` is present
    items_verified: bool | None = None  # every isolated item verified (None: none checked)
    evidence: Comparison | None = None  # the fresh trials against its parent (verification)
    note: str | None = None  # a suspect's: why it is not verified
    trials: int | None = None  # fresh verification trials a side (None: not recorded)

    def to_json(self) -> Json:
        out: Json = {
            "commit": self.commit,
            "subject": self.subject,
            "kind": self.kind,
            "dependencies": [d.to_json() for d in self.dependencies],
            "config_keys": list(self.config_keys),
            "effect": self.effect,
        }
        if self.share is not None:
            out["share"] = self.share
        out |= {"confidence": self.confidence, "verified": self.verified}
        if self.isolated:
            out["items_verified"] = self.items_verified
        if self.evidence is not None:
            out["evidence"] = self.evidence.to_json()
        if self.trials is not None:
            out["trials"] = self.trials
        if self.note is not None:
            out["note"] = self.note
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Culprit:
        return cls(
            commit=str(data.get("commit") or ""),
            subject=str(data.get("subject") or ""),
            kind=str(data.get("kind") or "code"),
            effect=opt_float(data.get("effect")),
            confidence=float(data.get("confidence") or 0.0),
            verified=bool(data.get("verified", True)),
            dependencies=tuple(Dependency.from_json(d) for d in maps(data.get("dependencies"))),
            config_keys=strs(data.get("config_keys")),
            share=opt_float(data.get("share")),
            isolated="items_verified" in data,
            items_verified=data.get("items_verified"),
            evidence=Comparison.from_json(data["evidence"])
            if isinstance(data.get("evidence"), Mapping)
            else None,
            note=None if data.get("note") is None else str(data["note"]),
            trials=None if data.get("trials") is None else int(data["trials"]),
        )


@dataclass(frozen=True)
class Verification:
    """Fresh, interleaved trials of the culprit against its parent."""

    verified: bool
    confidence: float
    note: str
    comparison: Comparison | None = None  # None: the culprit or its parent could not be re-measured
    items: tuple[Mapping[str, Any], ...] | None = None  # isolation's per-item checks, when it ran

    @property
    def relative_effect(self) -> float | None:
        return None if self.comparison is None else self.comparison.relative_effect

    def to_json(self) -> Json:
        if self.comparison is None:
            out: Json = {
                "verified": self.verified,
                "note": self.note,
                "confidence": self.confidence,
                "relative_effect": None,
            }
        else:
            out = {
                **self.comparison.to_json(),
                "verified": self.verified,
                "confidence": self.confidence,
                "note": self.note,
            }
        if self.items is not None:
            out["items"] = [dict(i) for i in self.items]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verification:
        return cls(
            bool(data.get("verified")),
            float(data.get("confidence") or 0.0),
            str(data.get("note") or ""),
            Comparison.from_json(data) if "p_value" in data else None,
            maps(data["items"]) if "items" in data else None,
        )


@dataclass(frozen=True)
class IsolationStep:
    """One measured state of the isolation."""

    phase: str
    state: str
    verdict: str

    def to_json(self) -> Json:
        return {"phase": self.phase, "state": self.state, "verdict": self.verdict}


@dataclass(frozen=True)
class Isolation:
    """Which package, version or config key of the culprit commit (or why not)."""

    kind: str = "code"
    code_alone: str | None = None
    changes: tuple[Mapping[str, Any], ...] = ()  # shapes: bisector.isolate.changes.Change.to_json
    culprits: tuple[Mapping[str, Any], ...] = ()
    grouped: tuple[str, ...] = ()
    interacting: tuple[str, ...] = ()
    first_bad_versions: Mapping[str, str] = field(default_factory=dict)
    versions_tried: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    steps: tuple[IsolationStep, ...] = ()
    verification: tuple[Mapping[str, Any], ...] = ()  # per item: reverted and applied checks
    notes: tuple[str, ...] = ()
    error: str | None = None  # isolation failed; the commit-level answer stands

    @classmethod
    def failed(cls, error: str) -> Isolation:
        return cls(error=error)

    def to_json(self) -> Json:
        if self.error is not None:
            return {"error": self.error}
        return {
            "kind": self.kind,
            "code_alone": self.code_alone,
            "changes": [dict(c) for c in self.changes],
            "culprits": [dict(c) for c in self.culprits],
            "grouped": list(self.grouped),
            "interacting": list(self.interacting),
            "first_bad_versions": dict(self.first_bad_versions),
            "versions_tried": {k: list(v) for k, v in self.versions_tried.items()},
            "steps": [s.to_json() for s in self.steps],
            "verification": [dict(v) for v in self.verification],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Isolation:
        if "error" in data:
            return cls.failed(str(data["error"]))
        return cls(
            kind=str(data.get("kind") or "code"),
            code_alone=data.get("code_alone"),
            changes=maps(data.get("changes")),
            culprits=maps(data.get("culprits")),
            grouped=strs(data.get("grouped")),
            interacting=strs(data.get("interacting")),
            first_bad_versions={
                str(k): str(v) for k, v in (data.get("first_bad_versions") or {}).items()
            },
            versions_tried={str(k): strs(v) for k, v in (data.get("versions_tried") or {}).items()},
            steps=tuple(
                IsolationStep(
                    str(s.get("phase") or ""),
                    str(s.get("state") or ""),
                    str(s.get("verdict") or ""),
                )
                for s in maps(data.get("steps"))
            ),
            verification=maps(data.get("verification")),
            notes=strs(data.get("notes")),
        )
