"""`bisector run`: resolve, snapshot, reproduce, coarse, fine, verify, isolate, report.

This module wires the pure search and judge to the adapters (git, builders, runner,
journal). Every trial is journaled before a verdict uses it; verdicts are recomputed from
journaled trials on resume, so a killed run continues without repeating measurements.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bisector.config import Config, load_config
from bisector.core import judge
from bisector.core.sampling import EndpointUnmeasurable, Sampler
from bisector.core.search import BisectResult, CoarseFine
from bisector.core.types import Commit, MetricRule, Status, Verdict
from bisector.document import (
    Comparison,
    Culprit,
    CulpritCommit,
    Details,
    Endpoint,
    Isolation,
    Range,
    RunDocument,
    RunOptions,
    Step,
    Verification,
)
from bisector.engine.measure import Measurer
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.log import get_logger
from bisector.ports import (
    ProbeStarted,
    Progress,
    RangeNarrowed,
    Resumed,
    RollingBack,
    TrialStarted,
    VerdictReached,
    no_progress,
)
from bisector.store.journal import Journal

log = get_logger("bisector.run")

# Re-measure the endpoints after every this many probed candidates (see _interleave_endpoints).
INTERLEAVE_EVERY = 3

@dataclass(frozen=True)
class RunRequest:
    good: str
    bad: str
    repo: Path = Path(".")
    config: Path | None = None
    metric: str | None = None
    builder: str | None = None
    all_commits: bool = False
    jobs: int = 2  # environments built in parallel in the background (venv, docker)
    fresh: bool = False
    report_dir: Path | None = None
    rollback: bool = False


@dataclass
class RunOutcome:
    status: Status
    document: RunDocument
    report_path: Path | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


def bench_key(cfg: Config) -> str:
    """Identifies the benchmark: trials of the same key are comparable across runs."""
    payload = {"command": cfg.benchmark.command, "env": cfg.benchmark.env}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _run_key(good: Commit, bad: Commit, metric: str, builder: str, all_commits: bool, bkey: str) -> str:
    raw = "\0".join([good.sha, bad.sha, metric, builder, str(all_commits), bkey])
    return hashlib.sha256(raw.encode()).hexdigest()


class OpenMeasurer(Protocol):
    """How a run gets its measurer (the `Probe`) once the run has an id: `Measurer`'s signature."""

    def __call__(
        self, *, cfg: Config, git: GitRepo, journal: Journal, run_id: str, run_dir: Path,
        store: Path, builder_name: str, bench_key: str, reuse_across_runs: bool, jobs: int = 1,
    ) -> AbstractContextManager[Measurer]: ...


@dataclass(frozen=True)
class Parts:
    """What `run_bisection` works with, like the daemon's `Seams`; `real_parts` builds them.

    The repository, the journal and the measurer are opened by the run, in its order: the
    journal only once the refs are checked (a bad ref leaves no store behind), the
    measurer once the journal has given the run an id.
    """

    open_vcs: Callable[[Path], AbstractContextManager[GitRepo]]
    open_journal: Callable[[Path], AbstractContextManager[Journal]]
    open_measurer: OpenMeasurer
    progress: Progress = no_progress


def real_parts(progress: Progress = no_progress) -> Parts:
    """The parts of a real run: git, the SQLite journal, builders and benchmark processes."""
    return Parts(open_vcs=GitRepo, open_journal=Journal, open_measurer=Measurer, progress=progress)


class _Hunt:
    """One run's state: the endpoints' samples, the probe, the journaled steps."""

    def __init__(
        self, cfg: Config, metric_name: str, metric: MetricRule, measurer: Measurer,
        journal: Journal, run_id: str, progress: Progress,
    ) -> None:
        self.cfg, self.metric_name, self.metric = cfg, metric_name, metric
        self.measurer, self.journal, self.run_id, self.progress = measurer, journal, run_id, progress
        self.sampler = Sampler(measurer, metric_name, metric, cfg.benchmark.repeats.budget(), progress)
        self.good: Commit | None = None
        self.bad: Commit | None = None
        self.steps: list[dict[str, Any]] = []
        self.verdicts: dict[str, Verdict] = {}
        self.probes_done = 0

    def samples(self, commit: Commit) -> list[list[float]]:
        return self.measurer.samples(commit, self.metric_name)

    def reproduce(self, good: Commit, bad: Commit) -> judge.Comparison:
        self.good, self.bad = good, bad
        try:
            comp = self.sampler.settle_endpoints(good, bad)
        except EndpointUnmeasurable as exc:
            if not exc.untestable:
                raise
            raise BisectorError(exc.message, hint=f"see the trial logs under {self.measurer.run_dir}") from None
        for c, name in ((good, "good"), (bad, "bad")):
            s = self.samples(c)
            self._step("reproduce", c, Verdict.GOOD if name == "good" else Verdict.BAD, s)
        return comp

    def probe(self, commit: Commit, phase: str) -> Verdict:
        assert self.good is not None and self.bad is not None
        self.progress(ProbeStarted(phase, commit.short, commit.subject))
        decision = self.sampler.decide(commit, self.good, self.bad, phase)
        if decision.reason:
            log.warning("candidate untestable", commit=commit.short, reason=decision.reason)
        self.verdicts[commit.sha] = decision.verdict
        self._step(phase, commit, decision.verdict, self.samples(commit), decision.reason)
        return decision.verdict

    def _interleave_endpoints(self) -> None:
        """In a long run, re-measure both endpoints every few probes, alternating order.

        Drift over a long run (a GPU warming up, a neighbour's load) then moves the
        endpoints' samples too, so the judge does not read it as a regression.
        """
        assert self.good is not None and self.bad is not None
        self.probes_done += 1
        if self.probes_done % INTERLEAVE_EVERY:
            return
        pair = (self.good, self.bad) if (self.probes_done // INTERLEAVE_EVERY) % 2 else (self.bad, self.good)
        for c in pair:
            self.progress(TrialStarted("interleave", c.short, len(self.measurer.trials(c)) + 1))
            self.measurer.take(c)

    def _step(
        self, phase: str, commit: Commit, verdict: Verdict, samples: list[list[float]], reason: str = "",
    ) -> None:
        med = judge.process_medians(samples) if samples else []
        median = sorted(med)[len(med) // 2] if med else None
        if med and len(med) % 2 == 0:
            median = (sorted(med)[len(med) // 2 - 1] + sorted(med)[len(med) // 2]) / 2
        step = {"commit": commit.sha, "verdict": verdict.value, "samples": len(samples), "median": median, "phase": phase}
        self.steps.append(step)
        self.journal.add_step(self.run_id, phase, commit.sha, verdict.value, len(samples), median,
                              {"reason": reason} if reason else None)
        self.progress(VerdictReached(phase, commit.sha, commit.short, verdict, len(samples), median))

    def bisect(self, commits: Sequence[Commit], tag_indices: Sequence[int]) -> BisectResult:
        """Release tags first, then the commits between the adjacent ones (0 good, -1 bad)."""
        search = CoarseFine(len(commits), tag_indices)
        phase = ""
        while (index := search.next_probe()) is not None:
            if search.phase != phase:
                phase = search.phase
                what = "release tags" if phase == "coarse" else "commits"
                self.progress(RangeNarrowed(search.span, what))
            self.measurer.prefetch([commits[i] for i in search.candidates_to_prefetch()])
            cached = self.verdicts.get(commits[index].sha)
            verdict = cached if cached is not None else self.probe(commits[index], phase)
            search.record(index, verdict)
            if cached is None:
                self._interleave_endpoints()
        return search.result()


def run_bisection(req: RunRequest, progress: Progress = no_progress, parts: Parts | None = None) -> RunOutcome:
    """The whole pipeline of DESIGN.md, isolation included, from refs to a report.

    `parts` default to the real ones (`real_parts(progress)`); given, their own `progress`
    is the one used.
    """
    parts = parts if parts is not None else real_parts(progress)
    progress = parts.progress
    t0 = time.monotonic()
    repo_path = req.repo.resolve()
    cfg = load_config(repo_path, req.config)
    metric_name, metric_cfg = cfg.metric(req.metric)
    metric = metric_cfg.rule()
    builder_name = req.builder or cfg.environment.builder
    with parts.open_vcs(repo_path) as git:
        good, bad = git.resolve(req.good), git.resolve(req.bad)
        git.check_range(good, bad)
        store = repo_path / cfg.snapshots.store
        _snapshot_endpoints(repo_path, cfg, git, (req.good, req.bad), progress)
        bkey = bench_key(cfg)
        key = _run_key(good, bad, metric_name, builder_name, req.all_commits, bkey)
        with parts.open_journal(store) as journal:
            run, resumed = journal.open_run(
                key=key, good_ref=req.good, bad_ref=req.bad, good_sha=good.sha, bad_sha=bad.sha,
                metric=metric_name,
                options={"builder": builder_name, "all_commits": req.all_commits, "jobs": req.jobs},
                fresh=req.fresh,
            )
            if resumed:
                journal.clear_steps(run.id)
                progress(Resumed(run.id, journal.trial_count(run.id)))
            run_dir = store / "runs" / run.id
            with parts.open_measurer(
                cfg=cfg, git=git, journal=journal, run_id=run.id, run_dir=run_dir, store=store,
                builder_name=builder_name, bench_key=bkey, reuse_across_runs=not req.fresh, jobs=req.jobs,
            ) as measurer:
                hunt = _Hunt(cfg, metric_name, metric, measurer, journal, run.id, progress)
                doc = _hunt(hunt, git, good, bad, req, cfg)
            doc = replace(
                doc, run_id=run.id, measurements=journal.trial_count(run.id),
                wall_s=round(time.monotonic() - t0, 2),
                options=RunOptions(builder=builder_name, all_commits=req.all_commits, jobs=req.jobs), bench_key=bkey,
            )
            report_dir = req.report_dir or (store / "reports" / run.id)
            from bisector.report.files import write_reports

            # report.json and the page are written before the path they will have is known.
            doc = replace(doc, report=str(write_reports(doc, report_dir)))
            from bisector.report.html import write_html_report

            doc = replace(doc, report=str(write_html_report(doc, report_dir, journal=journal, repo=repo_path,
                                                            cfg=cfg, git=git)))
            journal.finish_run(run.id, doc.status.value, doc.to_json())
    if req.rollback and doc.status is Status.FOUND:
        doc = replace(doc, rollback=_roll_back_to_good(repo_path, cfg, req.good, progress))
    return RunOutcome(status=doc.status, document=doc, report_path=Path(str(doc.report)), steps=hunt.steps)


def _steps(hunt: _Hunt) -> tuple[Step, ...]:
    return tuple(Step.from_json(s) for s in hunt.steps)


def _hunt(hunt: _Hunt, git: GitRepo, good: Commit, bad: Commit, req: RunRequest, cfg: Config) -> RunDocument:
    comp = hunt.reproduce(good, bad)
    doc = RunDocument(
        status=Status.NOT_REPRODUCED, metric=hunt.metric_name,
        good=Endpoint(req.good, good.sha, _median_of(hunt.samples(good))),
        bad=Endpoint(req.bad, bad.sha, _median_of(hunt.samples(bad))),
        details=Details(reproduction=_comparison(comp)),
    )
    if not comp.reproduced:
        return replace(doc, steps=_steps(hunt))
    first_parent = not req.all_commits
    commits = [good, *git.commits_between(good.sha, bad.sha, first_parent=first_parent)]
    index = {c.sha: i for i, c in enumerate(commits)}
    tag_idx = sorted({index[t.sha] for t in git.tags_between(good.sha, bad.sha, first_parent=first_parent)})
    found = hunt.bisect(commits, tag_idx)
    last_good, first_bad = commits[found.last_good], commits[found.first_bad]
    rng = Range(last_good.sha, first_bad.sha, tuple(commits[i].sha for i in found.untestable))
    if not found.found:
        candidates = tuple(commits[i].sha for i in range(found.last_good + 1, found.first_bad + 1))
        return replace(doc, status=Status.INCONCLUSIVE, range=rng, steps=_steps(hunt),
                       details=replace(doc.details, candidates=candidates))
    verification = _verify(hunt, last_good, first_bad)
    culprit = Culprit(
        commit=first_bad.sha, subject=first_bad.subject, kind="code", effect=verification.relative_effect,
        confidence=verification.confidence, verified=verification.verified,
    )
    details = replace(doc.details, culprit_commit=CulpritCommit(
        author=first_bad.author, date=first_bad.date, diffstat=git.diffstat(last_good.sha, first_bad.sha),
        parent=last_good.sha,
    ))
    # steps 6-7 inside the culprit (issue 5)
    isolation, culprit, verification = _isolate(hunt, git, last_good, first_bad, culprit, verification)
    return replace(doc, status=Status.FOUND, culprit=culprit, range=rng, steps=_steps(hunt), details=details,
                   verification=verification, isolation=isolation)


def _isolate(
    hunt: _Hunt, git: GitRepo, parent: Commit, culprit_commit: Commit, culprit: Culprit, verification: Verification,
) -> tuple[Isolation, Culprit, Verification]:
    """Which package, version or config key of the culprit commit (bisector/isolate/)."""
    from bisector.errors import BisectorError
    from bisector.isolate.run import apply_isolation, isolate_commit

    try:
        result = isolate_commit(
            cfg=hunt.cfg, metric_name=hunt.metric_name, metric=hunt.metric, measurer=hunt.measurer,
            journal=hunt.journal, run_id=hunt.run_id, git=git, parent=parent, culprit=culprit_commit,
            progress=hunt.progress,
        )
    except (BisectorError, ValueError) as exc:  # the commit-level answer stands; say why not finer
        log.warning("isolation failed", error=str(exc))
        return Isolation.failed(str(exc)), culprit, verification
    return apply_isolation(result, culprit, verification)


def _verify(hunt: _Hunt, parent: Commit, culprit: Commit) -> Verification:
    """Re-measure the culprit against its parent with fresh, interleaved trials."""
    # 5 vs 5 fresh processes is the smallest design whose exact test can reach p < 0.01.
    n = max(hunt.cfg.benchmark.repeats.min, 5)
    base_p, base_c = len(hunt.samples(parent)), len(hunt.samples(culprit))
    for _ in range(n):
        hunt.measurer.take(parent)
        hunt.measurer.take(culprit)
    ps, cs = hunt.samples(parent)[base_p:], hunt.samples(culprit)[base_c:]
    if len(ps) < 2 or len(cs) < 2:
        return Verification(verified=False, confidence=0.0,
                            note="the culprit or its parent could not be re-measured")
    comp = judge.compare(ps, cs, hunt.metric)
    verified = comp.reproduced
    return Verification(
        verified=verified, confidence=round(1.0 - comp.p_value, 4), comparison=_comparison(comp),
        note="the regression reappears between parent and culprit in fresh trials"
        if verified else "fresh trials of parent and culprit did not show the regression (unverified)",
    )


def _comparison(comp: judge.Comparison) -> Comparison:
    return Comparison.of(
        p_value=comp.p_value, effect=comp.effect, ci=comp.ci, relative_effect=comp.relative_effect,
        significant=comp.significant, regressed=comp.regressed,
    )


def _median_of(samples: list[list[float]]) -> float | None:
    med = sorted(judge.process_medians(samples)) if samples else []
    if not med:
        return None
    mid = len(med) // 2
    return med[mid] if len(med) % 2 else (med[mid - 1] + med[mid]) / 2


def _roll_back_to_good(repo_path: Path, cfg: Config, good_ref: str, progress: Progress) -> dict[str, Any]:
    """`run --rollback`: put the good endpoint's configs back (the rollback package's rules:
    atomic, drift-checked, health-checked, alert-and-pause on failure)."""
    from rollback.entry import rollback_after_run

    progress(RollingBack(good_ref))
    return rollback_after_run(repo_path, cfg, good_ref)  # refused while paused


def _snapshot_endpoints(
    repo_path: Path, cfg: Config, git: GitRepo, refs: tuple[str, str], progress: Progress
) -> None:
    """Snapshot both endpoints (reused when stored); optional until the store exists."""
    try:
        from snapshots import api as snap_api
    except ImportError:  # the snapshot store is an optional layer of the pipeline
        return
    snap_api.take(repo_path, cfg, list(refs))
