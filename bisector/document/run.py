"""The run document and its top-level parts: endpoints, range, steps, details, options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bisector.core.types import Status, Verdict
from bisector.document._json import Json, maps, opt_float, strs
from bisector.document.findings import (
    Comparison,
    Culprit,
    Isolation,
    Verification,
)
from bisector.document.node_types import NodeTypeTrials


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
        return cls(
            str(data.get("ref") or ""), str(data.get("commit") or ""), opt_float(data.get("value"))
        )


@dataclass(frozen=True)
class Range:
    """Where the first bad commit lies: (last_good, first_bad], and the commits not placed.

    `untestable` could not be measured (build failure, exit 125, failed trials);
    `unclear` measured but could not be placed (None: a document from before the split).
    """

    last_good: str
    first_bad: str
    untestable: tuple[str, ...] = ()
    unclear: tuple[str, ...] | None = None

    def to_json(self) -> Json:
        out: Json = {
            "last_good": self.last_good,
            "first_bad": self.first_bad,
            "untestable": list(self.untestable),
        }
        if self.unclear is not None:
            out["unclear"] = list(self.unclear)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Range:
        return cls(
            str(data.get("last_good") or ""),
            str(data.get("first_bad") or ""),
            strs(data.get("untestable")),
            strs(data["unclear"]) if "unclear" in data else None,
        )


@dataclass(frozen=True)
class NoiseReport:
    """The contract's `noise`: spreads relative to the good endpoint's median.

    The headline numbers are the larger of the two endpoints'; `good` / `bad` hold each
    endpoint's own (`between_process_cv`, `within_process_cv`, `drift`, `processes`).
    `warning`: the threshold is below what this noise allows within repeats.max.
    """

    between_process_cv: float
    within_process_cv: float
    endpoint_drift: float
    good: Mapping[str, Any] = field(default_factory=dict)
    bad: Mapping[str, Any] = field(default_factory=dict)
    warning: str | None = None

    def to_json(self) -> Json:
        return {
            "between_process_cv": self.between_process_cv,
            "within_process_cv": self.within_process_cv,
            "endpoint_drift": self.endpoint_drift,
            "good": dict(self.good),
            "bad": dict(self.bad),
            "warning": self.warning,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoiseReport:
        return cls(
            float(data.get("between_process_cv") or 0.0),
            float(data.get("within_process_cv") or 0.0),
            float(data.get("endpoint_drift") or 0.0),
            dict(data.get("good") or {}),
            dict(data.get("bad") or {}),
            None if data.get("warning") is None else str(data["warning"]),
        )


@dataclass(frozen=True)
class Step:
    """One verdict of the search, in the order it was decided."""

    commit: str
    verdict: Verdict
    samples: int
    median: float | None
    phase: str
    node_type: str | None = None  # the node type it was judged on (a run over several)

    def to_json(self) -> Json:
        out: Json = {
            "commit": self.commit,
            "verdict": self.verdict.value,
            "samples": self.samples,
            "median": self.median,
            "phase": self.phase,
        }
        if self.node_type is not None:
            out["node_type"] = self.node_type
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            str(data.get("commit") or ""),
            Verdict(data.get("verdict", Verdict.UNCLEAR.value)),
            int(data.get("samples") or 0),
            opt_float(data.get("median")),
            str(data.get("phase") or ""),
            None if data.get("node_type") is None else str(data["node_type"]),
        )


@dataclass(frozen=True)
class CulpritCommit:
    """Git facts of the culprit commit (`details.culprit_commit`)."""

    author: str
    date: str
    diffstat: str
    parent: str

    def to_json(self) -> Json:
        return {
            "author": self.author,
            "date": self.date,
            "diffstat": self.diffstat,
            "parent": self.parent,
        }

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
            strs(data["candidates"]) if "candidates" in data else None,
            CulpritCommit.from_json(info) if isinstance(info, Mapping) else None,
            strs(data["notes"]) if "notes" in data else None,
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
        return cls(
            data.get("builder"), bool(data.get("all_commits")), None if jobs is None else int(jobs)
        )


@dataclass(frozen=True)
class Reuse:
    """Trials this run read from the journal that earlier runs took: only ever of the same
    builder (environment key) and benchmark command (benchmark key), so never pooled across."""

    trials: int
    builder: str | None
    runs: Mapping[str, int] = field(default_factory=dict)  # run id -> trials reused from it

    def to_json(self) -> Json:
        return {"trials": self.trials, "builder": self.builder, "runs": dict(self.runs)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reuse:
        runs = data.get("runs") or {}
        return cls(
            int(data.get("trials") or 0),
            None if data.get("builder") is None else str(data["builder"]),
            {str(k): int(v) for k, v in runs.items()} if isinstance(runs, Mapping) else {},
        )


@dataclass(frozen=True)
class RunDocument:
    """The whole outcome of one `bisector run`."""

    status: Status
    metric: str
    good: Endpoint | None
    bad: Endpoint | None
    culprit: Culprit | None = None
    # Every verified regression step, by commit order (None: a document from before them).
    culprits: tuple[Culprit, ...] | None = None
    suspect: Culprit | None = None  # inconclusive: the unverified candidate, with its evidence
    range: Range | None = None
    noise: NoiseReport | None = None
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
    reused: Reuse | None = None  # None: stored by a version that did not count them
    node_types: tuple[NodeTypeTrials, ...] | None = None  # the ray executor's kinds of machine

    def to_json(self) -> Json:
        out: Json = {
            "status": self.status.value,
            "metric": self.metric,
            "good": None if self.good is None else self.good.to_json(),
            "bad": None if self.bad is None else self.bad.to_json(),
            "culprit": None if self.culprit is None else self.culprit.to_json(),
        }
        if self.culprits is not None:
            out["culprits"] = [c.to_json() for c in self.culprits]
            out["suspect"] = None if self.suspect is None else self.suspect.to_json()
        out["range"] = None if self.range is None else self.range.to_json()
        if self.noise is not None:
            out["noise"] = self.noise.to_json()
        out |= {"steps": [s.to_json() for s in self.steps], "details": self.details.to_json()}
        if self.verification is not None:
            out["verification"] = self.verification.to_json()
        if self.isolation is not None:
            out["isolation"] = self.isolation.to_json()
        out |= {
            "run_id": self.run_id,
            "measurements": self.measurements,
            "wall_s": self.wall_s,
            "report": self.report,
        }
        if self.rollback is not None:
            out["rollback"] = dict(self.rollback)
        if self.options is not None:
            out["options"] = self.options.to_json()
        if self.bench_key is not None:
            out["bench_key"] = self.bench_key
        if self.reused is not None:
            out["reused"] = self.reused.to_json()
        if self.node_types is not None:
            out["node_types"] = [t.to_json() for t in self.node_types]
        return out

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        *,
        options: Mapping[str, Any] | None = None,
        bench_key: str | None = None,
    ) -> RunDocument:
        """Read a stored document; `options` and `bench_key` stand in where it has none
        (documents stored before they travelled inside)."""

        def part(key: str) -> Mapping[str, Any] | None:
            value = data.get(key)
            return value if isinstance(value, Mapping) else None

        good, bad, culprit, rng = part("good"), part("bad"), part("culprit"), part("range")
        suspect, noise, reused = part("suspect"), part("noise"), part("reused")
        verification, isolation, rollback = (
            part("verification"),
            part("isolation"),
            part("rollback"),
        )
        stored_options = part("options") or options
        measurements, wall_s = data.get("measurements"), data.get("wall_s")
        return cls(
            status=Status(data.get("status", Status.NOT_REPRODUCED.value)),
            metric=str(data.get("metric") or ""),
            good=None if good is None else Endpoint.from_json(good),
            bad=None if bad is None else Endpoint.from_json(bad),
            culprit=None if culprit is None else Culprit.from_json(culprit),
            culprits=tuple(Culprit.from_json(c) for c in maps(data["culprits"]))
            if "culprits" in data
            else None,
            suspect=None if suspect is None else Culprit.from_json(suspect),
            range=None if rng is None else Range.from_json(rng),
            noise=None if noise is None else NoiseReport.from_json(noise),
            steps=tuple(Step.from_json(s) for s in maps(data.get("steps"))),
            details=Details.from_json(part("details") or {}),
            verification=None if verification is None else Verification.from_json(verification),
            isolation=None if isolation is None else Isolation.from_json(isolation),
            run_id=None if data.get("run_id") is None else str(data["run_id"]),
            measurements=None if measurements is None else int(measurements),
            wall_s=opt_float(wall_s),
            report=None if data.get("report") is None else str(data["report"]),
            rollback=None if rollback is None else dict(rollback),
            options=None if stored_options is None else RunOptions.from_json(stored_options),
            bench_key=str(data.get("bench_key") or bench_key or "") or None,
            reused=None if reused is None else Reuse.from_json(reused),
            node_types=tuple(NodeTypeTrials.from_json(t) for t in maps(data["node_types"]))
            if "node_types" in data
            else None,
        )
