"""The run document: what `bisector run` decided, produced once, read everywhere.

The pipeline builds one `RunDocument`; the journal stores `to_json()`; the reports, the
CLI and the daemon read the typed fields (`from_json` when loading from the journal).
`to_json` is the JSON of the contract, key for key and in the same order as the dict the
pipeline used to build; `from_json` also reads documents stored by earlier versions,
which lack some keys (`options`, `bench_key`, sections of runs that stopped early).

The run's options and benchmark key travel inside the document, so re-rendering a report
never reads the current config (which may have changed since the run).

Pure: no git, SQLite or subprocess here. Parts whose shape belongs to another module (an
isolation's changes and per-item checks, a rollback's result) stay JSON mappings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bisector.core.types import Status, Verdict

Json = dict[str, Any]


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _strs(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or ())


def _maps(values: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(dict(v) for v in values or () if isinstance(v, Mapping))


@dataclass(frozen=True)
class Endpoint:
    """One end of the range: the ref the user gave, its commit, its median."""

    ref: str
    commit: str
    value: float | None

    def to_json(self) -> Json:
        return {"ref": self.ref, "commit": self.commit, "value": self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Endpoint:
        return cls(str(data.get("ref") or ""), str(data.get("commit") or ""), _opt_float(data.get("value")))


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
        cls, *, p_value: float, effect: float, ci: Sequence[float], relative_effect: float,
        significant: bool, regressed: bool,
    ) -> Comparison:
        """From the judge's numbers; JSON has no infinities, so an unbounded side is None."""
        low, high = (x if math.isfinite(x) else None for x in ci)
        return cls(p_value, effect, (low, high), relative_effect, significant, regressed)

    def to_json(self) -> Json:
        return {
            "p_value": self.p_value, "effect": self.effect,
            "ci": None if self.ci is None else list(self.ci),
            "relative_effect": self.relative_effect, "significant": self.significant, "regressed": self.regressed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        ci = data.get("ci")
        bounds = (_opt_float(ci[0]), _opt_float(ci[1])) if isinstance(ci, Sequence) and len(ci) == 2 else None
        return cls(
            _opt_float(data.get("p_value")), _opt_float(data.get("effect")), bounds,
            _opt_float(data.get("relative_effect")), data.get("significant"), data.get("regressed"),
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
            out["first_bad_version"] = self.first_bad_version
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
            str(data.get("name") or ""), data.get("from"), data.get("to"),
            data.get("first_bad_version") or data.get("first_bad"), bool(data.get("grouped")),
            None if together is None else _strs(together), data.get("verified"),
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

    def to_json(self) -> Json:
        out: Json = {
            "commit": self.commit, "subject": self.subject, "kind": self.kind,
            "dependencies": [d.to_json() for d in self.dependencies], "config_keys": list(self.config_keys),
            "effect": self.effect,
        }
        if self.share is not None:
            out["share"] = self.share
        out |= {"confidence": self.confidence, "verified": self.verified}
        if self.isolated:
            out["items_verified"] = self.items_verified
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Culprit:
        return cls(
            commit=str(data.get("commit") or ""), subject=str(data.get("subject") or ""),
            kind=str(data.get("kind") or "code"), effect=_opt_float(data.get("effect")),
            confidence=float(data.get("confidence") or 0.0), verified=bool(data.get("verified", True)),
            dependencies=tuple(Dependency.from_json(d) for d in _maps(data.get("dependencies"))),
            config_keys=_strs(data.get("config_keys")), share=_opt_float(data.get("share")),
            isolated="items_verified" in data, items_verified=data.get("items_verified"),
        )


@dataclass(frozen=True)
class Range:
    """Where the first bad commit lies: (last_good, first_bad], and the commits skipped."""

    last_good: str
    first_bad: str
    untestable: tuple[str, ...] = ()

    def to_json(self) -> Json:
        return {"last_good": self.last_good, "first_bad": self.first_bad, "untestable": list(self.untestable)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Range:
        return cls(str(data.get("last_good") or ""), str(data.get("first_bad") or ""), _strs(data.get("untestable")))


@dataclass(frozen=True)
class Step:
    """One verdict of the search, in the order it was decided."""

    commit: str
    verdict: Verdict
    samples: int
    median: float | None
    phase: str

    def to_json(self) -> Json:
        return {
            "commit": self.commit, "verdict": self.verdict.value, "samples": self.samples,
            "median": self.median, "phase": self.phase,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            str(data.get("commit") or ""), Verdict(data.get("verdict", Verdict.UNCLEAR.value)),
            int(data.get("samples") or 0), _opt_float(data.get("median")), str(data.get("phase") or ""),
        )


@dataclass(frozen=True)
class CulpritCommit:
    """Git facts of the culprit commit (`details.culprit_commit`)."""

    author: str
    date: str
    diffstat: str
    parent: str

    def to_json(self) -> Json:
        return {"author": self.author, "date": self.date, "diffstat": self.diffstat, "parent": self.parent}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CulpritCommit:
        return cls(*(str(data.get(k) or "") for k in ("author", "date", "diffstat", "parent")))


@dataclass(frozen=True)
class Details:
    """The document's `details`: the reproduction and what the outcome rests on."""

    reproduction: Comparison | None = None
    candidates: tuple[str, ...] | None = None  # inconclusive: the commits the first bad may be
    culprit_commit: CulpritCommit | None = None
    notes: tuple[str, ...] | None = None  # standalone isolation documents

    def to_json(self) -> Json:
        out: Json = {}
        if self.reproduction is not None:
            out["reproduction"] = self.reproduction.to_json()
        if self.candidates is not None:
            out["candidates"] = list(self.candidates)
        if self.culprit_commit is not None:
            out["culprit_commit"] = self.culprit_commit.to_json()
        if self.notes is not None:
            out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Details:
        repro, info = data.get("reproduction"), data.get("culprit_commit")
        return cls(
            Comparison.from_json(repro) if isinstance(repro, Mapping) else None,
            _strs(data["candidates"]) if "candidates" in data else None,
            CulpritCommit.from_json(info) if isinstance(info, Mapping) else None,
            _strs(data["notes"]) if "notes" in data else None,
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
            out: Json = {"verified": self.verified, "note": self.note, "confidence": self.confidence,
                         "relative_effect": None}
        else:
            out = {**self.comparison.to_json(), "verified": self.verified, "confidence": self.confidence,
                   "note": self.note}
        if self.items is not None:
            out["items"] = [dict(i) for i in self.items]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verification:
        return cls(
            bool(data.get("verified")), float(data.get("confidence") or 0.0), str(data.get("note") or ""),
            Comparison.from_json(data) if "p_value" in data else None,
            _maps(data["items"]) if "items" in data else None,
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
            "kind": self.kind, "code_alone": self.code_alone,
            "changes": [dict(c) for c in self.changes], "culprits": [dict(c) for c in self.culprits],
            "grouped": list(self.grouped), "interacting": list(self.interacting),
            "first_bad_versions": dict(self.first_bad_versions),
            "versions_tried": {k: list(v) for k, v in self.versions_tried.items()},
            "steps": [s.to_json() for s in self.steps], "verification": [dict(v) for v in self.verification],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Isolation:
        if "error" in data:
            return cls.failed(str(data["error"]))
        return cls(
            kind=str(data.get("kind") or "code"), code_alone=data.get("code_alone"),
            changes=_maps(data.get("changes")), culprits=_maps(data.get("culprits")),
            grouped=_strs(data.get("grouped")), interacting=_strs(data.get("interacting")),
            first_bad_versions={str(k): str(v) for k, v in (data.get("first_bad_versions") or {}).items()},
            versions_tried={str(k): _strs(v) for k, v in (data.get("versions_tried") or {}).items()},
            steps=tuple(
                IsolationStep(str(s.get("phase") or ""), str(s.get("state") or ""), str(s.get("verdict") or ""))
                for s in _maps(data.get("steps"))
            ),
            verification=_maps(data.get("verification")), notes=_strs(data.get("notes")),
        )


@dataclass(frozen=True)
class RunOptions:
    """The options the run was started with (those that change what it measured or walked)."""

    builder: str | None = None
    all_commits: bool = False  # walk into merged branches (else first-parent)
    jobs: int | None = None

    def to_json(self) -> Json:
        return {"builder": self.builder, "all_commits": self.all_commits, "jobs": self.jobs}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOptions:
        jobs = data.get("jobs")
        return cls(data.get("builder"), bool(data.get("all_commits")), None if jobs is None else int(jobs))


@dataclass(frozen=True)
class RunDocument:
    """The whole outcome of one `bisector run`."""

    status: Status
    metric: str
    good: Endpoint | None
    bad: Endpoint | None
    culprit: Culprit | None = None
    range: Range | None = None
    steps: tuple[Step, ...] = ()
    details: Details = field(default_factory=Details)
    verification: Verification | None = None
    isolation: Isolation | None = None
    run_id: str | None = None
    measurements: int | None = None
    wall_s: float | None = None
    report: str | None = None  # the HTML report's path
    rollback: Mapping[str, Any] | None = None  # `run --rollback`'s result (rollback package)
    options: RunOptions | None = None  # None: stored by a version that did not record them
    bench_key: str | None = None  # the benchmark's key its trials are journaled under

    def to_json(self) -> Json:
        out: Json = {
            "status": self.status.value, "metric": self.metric,
            "good": None if self.good is None else self.good.to_json(),
            "bad": None if self.bad is None else self.bad.to_json(),
            "culprit": None if self.culprit is None else self.culprit.to_json(),
            "range": None if self.range is None else self.range.to_json(),
            "steps": [s.to_json() for s in self.steps],
            "details": self.details.to_json(),
        }
        if self.verification is not None:
            out["verification"] = self.verification.to_json()
        if self.isolation is not None:
            out["isolation"] = self.isolation.to_json()
        out |= {"run_id": self.run_id, "measurements": self.measurements, "wall_s": self.wall_s,
                "report": self.report}
        if self.rollback is not None:
            out["rollback"] = dict(self.rollback)
        if self.options is not None:
            out["options"] = self.options.to_json()
        if self.bench_key is not None:
            out["bench_key"] = self.bench_key
        return out

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], *, options: Mapping[str, Any] | None = None, bench_key: str | None = None,
    ) -> RunDocument:
        """Read a stored document; `options` and `bench_key` stand in where it has none
        (documents stored before they travelled inside)."""

        def part(key: str) -> Mapping[str, Any] | None:
            value = data.get(key)
            return value if isinstance(value, Mapping) else None

        good, bad, culprit, rng = part("good"), part("bad"), part("culprit"), part("range")
        verification, isolation, rollback = part("verification"), part("isolation"), part("rollback")
        stored_options = part("options") or options
        measurements, wall_s = data.get("measurements"), data.get("wall_s")
        return cls(
            status=Status(data.get("status", Status.NOT_REPRODUCED.value)),
            metric=str(data.get("metric") or ""),
            good=None if good is None else Endpoint.from_json(good),
            bad=None if bad is None else Endpoint.from_json(bad),
            culprit=None if culprit is None else Culprit.from_json(culprit),
            range=None if rng is None else Range.from_json(rng),
            steps=tuple(Step.from_json(s) for s in _maps(data.get("steps"))),
            details=Details.from_json(part("details") or {}),
            verification=None if verification is None else Verification.from_json(verification),
            isolation=None if isolation is None else Isolation.from_json(isolation),
            run_id=None if data.get("run_id") is None else str(data["run_id"]),
            measurements=None if measurements is None else int(measurements),
            wall_s=_opt_float(wall_s),
            report=None if data.get("report") is None else str(data["report"]),
            rollback=None if rollback is None else dict(rollback),
            options=None if stored_options is None else RunOptions.from_json(stored_options),
            bench_key=str(data.get("bench_key") or bench_key or "") or None,
        )
