"""`bisector run`: resolve, snapshot, hunt (reproduce, bisect, verify), isolate, report.

This module is the adapter around the pure hunt (`core.hunt`): it builds the probe (the
`Measurer`: git, builders, runner, journal), calls `hunt`, isolates inside each culprit
commit and builds the typed document. Every trial is journaled before a verdict uses it;
verdicts are recomputed from journaled trials on resume, so a killed run continues
without repeating measurements.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bisector.config import Config, load_config
from bisector.core.hunt import hunt
from bisector.core.sampling import EndpointUnmeasurable
from bisector.core.types import Commit, MetricRule, Status, Verdict
from bisector.document import (
    Culprit,
    CulpritCommit,
    Details,
    Endpoint,
    Isolation,
    Range,
    Reuse,
    RunDocument,
    RunOptions,
    Step,
    Verification,
)
from bisector.engine.benchkey import bench_key, run_key
from bisector.engine.executor import choose_measurer
from bisector.engine.findings import (
    comparison_of,
    culprit_of,
    median_of,
    noise_report,
    verification_of,
    with_suspect,
)
from bisector.engine.hardware import VerdictTypes, run_keys
from bisector.engine.measure import Measurer
from bisector.engine.preflight import preflight
from bisector.engine.reference import use_reference
from bisector.engine.trialreason import endpoint_error, untestable_reason
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.isolate.run import apply_isolation, isolate_commit
from bisector.log import get_logger
from bisector.ports import (
    Progress,
    ProgressEvent,
    Resumed,
    RollingBack,
    VerdictReached,
    Warned,
    no_progress,
)
from bisector.report.files import write_reports
from bisector.report.html import write_html_report
from bisector.store.journal import Journal
from bisector.store.runlock import RunLock
from rollback.entry import rollback_after_run
from snapshots import api as snap_api

log = get_logger("bisector.run")


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
    executor: str | None = None  # local | ray (None: execution.executor of the config)
    workers: int | None = None  # trials in flight at once (ray)


@dataclass
class RunOutcome:
    status: Status
    document: RunDocument
    report_path: Path | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


class OpenMeasurer(Protocol):
    """How a run gets its measurer (the `Probe`) once the run has an id: `Measurer`'s signature."""

    def __call__(
        self,
        *,
        cfg: Config,
        git: GitRepo,
        journal: Journal,
        run_id: str,
        run_dir: Path,
        store: Path,
        builder_name: str,
        bench_key: str,
        reuse_across_runs: bool,
        jobs: int = 1,
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


@dataclass(frozen=True)
class _Ctx:
    """What the document-building steps of one run share."""

    cfg: Config
    metric_name: str
    metric: MetricRule
    measurer: Measurer
    journal: Journal
    run_id: str
    progress: Progress
    git: GitRepo

    def samples(self, commit: Commit) -> list[list[float]]:
        return self.measurer.samples(commit, self.metric_name)


def run_bisection(
    req: RunRequest, progress: Progress = no_progress, parts: Parts | None = None
) -> RunOutcome:
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
    chosen = choose_measurer(
        cfg, req.executor, req.workers, parts.open_measurer, builder=builder_name
    )
    # Entered first: the ray executor's cluster is reached and found able to run a trial
    # before anything is written (a refusal leaves the disk as it was).
    with chosen as open_measurer, parts.open_vcs(repo_path) as git:
        good, bad = git.resolve(req.good), git.resolve(req.bad)
        git.check_range(good, bad, (req.good, req.bad))
        roll = repo_path if req.rollback else None  # its target is checked now too
        named = (req.good, req.bad)  # as errors name them (the benchmark's files at each)
        for warning in preflight(git, cfg, builder_name, good, bad, rollback_in=roll, refs=named):
            progress(Warned(warning))  # before anything is written
        store = repo_path / cfg.snapshots.store
        snap_api.take(repo_path, cfg, [req.good, req.bad])  # reused when stored
        bkey = bench_key(cfg, good.sha)
        key = run_key(good, bad, metric_name, builder_name, req.all_commits, bkey)
        with RunLock(store), parts.open_journal(store) as journal:  # one run per store at a time
            run, resumed = journal.open_run(
                key=key,
                good_ref=req.good,
                bad_ref=req.bad,
                good_sha=good.sha,
                bad_sha=bad.sha,
                metric=metric_name,
                options={"builder": builder_name, "all_commits": req.all_commits, "jobs": req.jobs},
                fresh=req.fresh,
            )
            if resumed:
                journal.clear_steps(run.id)
                progress(Resumed(run.id, journal.trial_count(run.id)))
            run_dir = store / "runs" / run.id
            with open_measurer(
                cfg=cfg,
                git=git,
                journal=journal,
                run_id=run.id,
                run_dir=run_dir,
                store=store,
                builder_name=builder_name,
                bench_key=bkey,
                reuse_across_runs=not req.fresh,
                jobs=req.jobs,
            ) as measurer:
                use_reference(measurer, good)  # benchmark.reference: auto (once per run)
                ctx = _Ctx(cfg, metric_name, metric, measurer, journal, run.id, progress, git)
                try:
                    doc = _hunt(ctx, good, bad, req)
                except EndpointUnmeasurable as exc:  # ended: not resumed, failures not replayed
                    refs = {good.sha: req.good, bad.sha: req.bad}
                    error = endpoint_error(exc, measurer, refs, measurer.run_dir)
                    journal.fail_run(run.id, error.message, retry=(good.sha, bad.sha))
                    raise error from None
                keys = () if req.fresh else measurer.keys_read()  # --fresh reads only its own
                reused, node_types = run_keys(journal, run.id, measurer, keys)
            doc = replace(
                doc,
                run_id=run.id,
                measurements=journal.trial_count(run.id),
                wall_s=round(time.monotonic() - t0, 2),
                options=RunOptions(
                    builder=builder_name, all_commits=req.all_commits, jobs=req.jobs
                ),
                bench_key=measurer.bench_key,  # the ray executor's carries the fingerprint
                reused=Reuse(sum(reused.values()), builder_name, reused),
                node_types=node_types,  # the ray executor's, each with its trials
            )
            report_dir = req.report_dir or (store / "reports" / run.id)

            # report.json names the page beside it, as `run --json` and `report` do
            doc = replace(doc, report=str(report_dir / "report.html"))
            write_reports(doc, report_dir)
            write_html_report(doc, report_dir, journal=journal, repo=repo_path, cfg=cfg, git=git)
            journal.finish_run(run.id, doc.status.value, doc.to_json())
    if req.rollback and doc.status is Status.FOUND:
        # `run --rollback`: the good endpoint's configs back by the rollback package's rules
        # (atomic, drift-checked, health-checked, alert-and-pause; refused while paused)
        progress(RollingBack(req.good))
        doc = replace(doc, rollback=rollback_after_run(repo_path, cfg, req.good))
    return RunOutcome(
        status=doc.status,
        document=doc,
        report_path=Path(str(doc.report)),
        steps=[s.to_json() for s in doc.steps],
    )


def _hunt(ctx: _Ctx, good: Commit, bad: Commit, req: RunRequest) -> RunDocument:
    """The pure hunt (`core.hunt`) over the measurer, then isolation inside each culprit."""
    git = ctx.git
    first_parent = not req.all_commits
    commits = [good, *git.commits_between(good.sha, bad.sha, first_parent=first_parent)]
    index = {c.sha: i for i, c in enumerate(commits)}
    tag_idx = sorted(
        {index[t.sha] for t in git.tags_between(good.sha, bad.sha, first_parent=first_parent)}
    )
    on_type = VerdictTypes(ctx.measurer)  # over several node types: each verdict's

    def journaled(event: ProgressEvent) -> None:
        # Every verdict is journaled as it is reached (the daemon's status reads them live).
        if isinstance(event, VerdictReached):
            if event.verdict is Verdict.SKIP and not event.reason and event.commit in index:
                # the search says untestable; say why (the build, or the trials' failure)
                why = untestable_reason(ctx.measurer, commits[index[event.commit]])
                event = replace(event, reason=why)
            if event.commit in index:
                on_type.note(event.phase, commits[index[event.commit]])
            ctx.journal.add_step(
                ctx.run_id,
                event.phase,
                event.commit,
                event.verdict.value,
                event.samples,
                event.median,
                {"reason": event.reason} if event.reason else None,
            )
            if event.reason:  # the progress line says it (a warning here said it twice)
                log.debug("candidate untestable", commit=event.label, reason=event.reason)
        ctx.progress(event)

    result = hunt(  # raises EndpointUnmeasurable (see `run_bisection`)
        commits,
        tag_idx,
        ctx.measurer,
        ctx.metric_name,
        ctx.metric,
        ctx.cfg.benchmark.repeats.budget(),
        journaled,
        prefetch=ctx.measurer.prefetch,
        search=ctx.measurer.search,
    )
    steps = tuple(
        Step(sha, s.verdict, s.samples, s.median, s.phase, on_type.of(s.phase, sha))
        for s in result.steps
        for sha in (commits[s.index].sha,)
    )
    doc = RunDocument(
        status=result.status,
        metric=ctx.metric_name,
        good=Endpoint(req.good, good.sha, median_of(ctx.samples(good))),
        bad=Endpoint(req.bad, bad.sha, median_of(ctx.samples(bad))),
        culprits=(),
        steps=steps,
        noise=noise_report(result.noise),
        details=Details(
            reproduction=comparison_of(result.reproduction),
            # why the status is what it is, when the fields do not say it (core.nullcheck)
            notes=(result.reason,) if result.reason else None,
        ),
    )
    if result.status is Status.NOT_REPRODUCED:
        return doc
    rng = Range(
        commits[result.last_good].sha,
        commits[result.first_bad].sha,
        tuple(commits[i].sha for i in result.untestable),
        tuple(commits[i].sha for i in result.unclear),
    )
    doc = replace(doc, range=rng)
    main = result.culprit
    culprits: list[Culprit] = []
    for found in result.culprits:
        # steps 6-7 inside each culprit (issue 5): which package or config key
        isolation, culprit, verification = _isolate(
            ctx,
            commits[found.index - 1],
            commits[found.index],
            culprit_of(commits[found.index], found),
            verification_of(found),
        )
        culprits.append(culprit)
        if found is main:
            doc = replace(doc, culprit=culprit, verification=verification, isolation=isolation)
    doc = replace(doc, culprits=tuple(culprits))
    named = main or result.suspect
    if named is not None:
        parent, commit = commits[named.index - 1], commits[named.index]
        doc = replace(
            doc,
            details=replace(
                doc.details,
                culprit_commit=CulpritCommit(
                    author=commit.author,
                    date=commit.date,
                    diffstat=git.diffstat(parent.sha, commit.sha),
                    parent=parent.sha,
                ),
            ),
        )
    if (suspect := result.suspect) is not None:
        doc = with_suspect(doc, commits[suspect.index], suspect)
    if result.status is Status.INCONCLUSIVE:
        candidates = tuple(
            commits[i].sha for i in range(result.last_good + 1, result.first_bad + 1)
        )
        doc = replace(doc, details=replace(doc.details, candidates=candidates))
    return doc


def _isolate(
    ctx: _Ctx,
    parent: Commit,
    culprit_commit: Commit,
    culprit: Culprit,
    verification: Verification,
) -> tuple[Isolation, Culprit, Verification]:
    """Which package, version or config key of the culprit commit (bisector/isolate/)."""

    try:
        result = isolate_commit(
            cfg=ctx.cfg,
            metric_name=ctx.metric_name,
            metric=ctx.metric,
            measurer=ctx.measurer,
            journal=ctx.journal,
            run_id=ctx.run_id,
            git=ctx.git,
            parent=parent,
            culprit=culprit_commit,
            progress=ctx.progress,
        )
    except (BisectorError, ValueError) as exc:  # the commit-level answer stands; say why not finer
        log.warning("isolation failed", error=str(exc))
        return Isolation.failed(str(exc)), culprit, verification
    return apply_isolation(result, culprit, verification)
