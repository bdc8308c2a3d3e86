"""Isolation entry points: inside a culprit commit (the pipeline), and standalone.

`isolate_commit` reads the parent's and the culprit's dependency files (the builder's
`environment.requirements`, with includes) and config files (`snapshots.configs`) from
git objects, lists their changes and runs `isolate.isolate` on measured states.
`isolate_files` does the same for two dependency sets or two config files on the
repository's HEAD code; `isolate_deps` and `isolate_config` read those two sides from
files for `bisector deps` and `bisector config --good/--bad`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bisector.builders.registry import isolates_dependencies, require_here
from bisector.builders.requirements import read_requirements
from bisector.config import Config, load_config
from bisector.core.types import Commit, MetricRule
from bisector.document import Culprit, Dependency, Verification
from bisector.document import Isolation as IsolationSection
from bisector.engine.benchfiles import check_benchmark_files
from bisector.engine.benchkey import bench_key
from bisector.engine.measure import Measurer
from bisector.errors import ConfigError
from bisector.gitrepo import GitRepo
from bisector.isolate.changes import Change, Files, config_changes, dependency_changes, is_lock
from bisector.isolate.index_versions import index_versions
from bisector.isolate.plan import Isolation, isolate
from bisector.isolate.sides import checkout_path, config_target, read_side
from bisector.isolate.states import MeasuredStates, Side, SideUnmeasurable, local_versions
from bisector.log import get_logger
from bisector.ports import ISOLATING, PhaseStarted, Progress, RangeNarrowed, no_progress
from bisector.store.journal import Journal
from bisector.store.runid import ISOLATION_KEY
from bisector.store.runlock import RunLock
from snapshots.configs import match_globs

log = get_logger("bisector.isolate.plan")


def commit_files(
    git: GitRepo, cfg: Config, sha: str
) -> tuple[dict[str, bytes | None], dict[str, bytes | None]]:
    """(dependency files, config files) of a commit, from git objects."""
    reqs = read_requirements(
        lambda p: git.read_file(sha, p), cfg.environment.requirements, cfg.environment.extras
    )
    configs = match_globs(git.list_files(sha), cfg.snapshots.configs)
    return dict(reqs.files), {p: git.read_file(sha, p) for p in configs}


def find_changes(
    cfg: Config, measurer: Measurer, good: tuple[Files, Files], bad: tuple[Files, Files]
) -> tuple[list[Change], list[str]]:
    """The changes to split, and notes on what was left out."""
    notes: list[str] = []
    deps = dependency_changes(good[0], bad[0], cfg.environment.requirements)
    if deps and not type(measurer.builder).isolates_dependencies:
        notes.append(
            f"the {type(measurer.builder).name} builder does not isolate dependencies: "
            f"{len(deps)} package change(s) not split"
        )
        deps = []
    locks = sorted({p for c in deps for p in c.touched if is_lock(p)})
    if locks:
        notes.append(
            f"{', '.join(locks)}: left out of states that take part of its changes, so the "
            "resolver installs from the declared files; only where those pin every locked "
            "package exactly, else the state is unresolved and its changes grouped"
        )
    return [*deps, *config_changes(good[1], bad[1])], notes


def available_versions(cfg: Config, root: Path) -> Callable[[str], list[str]]:
    """Versions installable here: find-links folders, and the configured simple indexes
    (`index_url`, `extra_index_urls`) unless `no_index`."""
    env = cfg.environment
    folders = [(root / f).resolve() for f in env.find_links if "://" not in f]
    indexes = [] if env.no_index else [u for u in [env.index_url, *env.extra_index_urls] if u]

    def versions(name: str) -> list[str]:
        return sorted({*local_versions(folders, name), *index_versions(indexes, name)})

    return versions


def isolate_commit(
    *,
    cfg: Config,
    metric_name: str,
    metric: MetricRule,
    measurer: Measurer,
    journal: Journal,
    run_id: str,
    git: GitRepo,
    parent: Commit,
    culprit: Commit,
    progress: Progress = no_progress,
) -> Isolation:
    """Split `culprit` against `parent` (DESIGN.md steps 6-7)."""
    good, bad = commit_files(git, cfg, parent.sha), commit_files(git, cfg, culprit.sha)
    changes, notes = find_changes(cfg, measurer, good, bad)
    if not changes:
        result = Isolation([])
        result.notes = [*notes, "the commit changes no dependency pins or config keys"]
        return result
    probe = MeasuredStates(
        cfg=cfg,
        metric_name=metric_name,
        metric=metric,
        measurer=measurer,
        journal=journal,
        run_id=run_id,
        changes=changes,
        progress=progress,
        good=Side(parent, {**good[0], **good[1]}, parent),
        bad=Side(culprit, {**bad[0], **bad[1]}, culprit),
    )
    probe.ensure_references()
    progress(RangeNarrowed(len(changes), ISOLATING))
    result = isolate(
        changes,
        probe,
        available_versions(cfg, git.root),
        on_verify=lambda: progress(PhaseStarted("verify-isolation")),
    )
    result.notes = [*notes, *result.notes]
    return result


def check_installs_dependencies(cfg: Config, paths: set[str], what: str) -> None:
    """Refuse (before anything is measured or written) a standalone isolation whose sides
    are dependency files when the builder does not install them: the local builder would
    measure both sides in the same packages and report "not reproduced" for nothing."""
    builder = cfg.environment.builder
    if paths & set(cfg.environment.requirements) and not isolates_dependencies(builder):
        raise ConfigError(
            f"bisector {what} needs a builder that installs dependencies; "
            f"environment.builder is {builder}",
            hint="set environment.builder: venv (or docker) in bisector.yaml; the "
            f"{builder} builder runs every side in this Python's installed packages",
        )


def isolate_files(
    *,
    repo: Path,
    config: Path | None,
    metric: str | None,
    good: Files,
    bad: Files,
    what: str,
    fresh: bool = False,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Standalone isolation: HEAD's code with the `good` files against the `bad` files.

    `good` / `bad` map repo paths to contents (dependency files, config files, or both);
    each path is checked to lie inside the checkout before anything is measured or written.
    """
    for path in {*good, *bad}:
        checkout_path(path)
    t0 = time.monotonic()
    repo_path = repo.resolve()
    cfg = load_config(repo_path, config)
    metric_name, metric_cfg = cfg.metric(metric)
    check_installs_dependencies(cfg, {*good, *bad}, what)
    require_here(cfg.environment.builder)  # its trials run here: no daemon is said now

    with GitRepo(repo_path) as git:
        head = git.resolve("HEAD")  # measured in checkouts of it: the benchmark must be there
        check_benchmark_files(git, cfg.benchmark.command, [(f"HEAD ({head.short})", head)])
        store = repo_path / cfg.snapshots.store
        digest = hashlib.sha256(
            repr((sorted(good.items()), sorted(bad.items()))).encode()
        ).hexdigest()
        bkey = bench_key(cfg)
        with RunLock(store), Journal(store) as journal:  # one run per store at a time
            run, _ = journal.open_run(
                key=f"{ISOLATION_KEY}{what}:{head.sha}:{digest}:{metric_name}:{bkey}",
                good_ref=f"{what}:good",
                bad_ref=f"{what}:bad",
                good_sha=head.sha,
                bad_sha=head.sha,
                metric=metric_name,
                options={"isolate": what},
                fresh=fresh,
            )
            with Measurer(
                cfg=cfg,
                git=git,
                journal=journal,
                run_id=run.id,
                run_dir=store / "runs" / run.id,
                store=store,
                builder_name=cfg.environment.builder,
                bench_key=bkey,
                reuse_across_runs=not fresh,
            ) as measurer:
                dep_paths = set(cfg.environment.requirements)

                def split(f: Files) -> tuple[Files, Files]:
                    return (
                        {p: d for p, d in f.items() if p in dep_paths},
                        {p: d for p, d in f.items() if p not in dep_paths},
                    )

                changes, notes = find_changes(cfg, measurer, split(good), split(bad))
                probe = MeasuredStates(
                    cfg=cfg,
                    metric_name=metric_name,
                    metric=metric_cfg.rule(),
                    measurer=measurer,
                    journal=journal,
                    run_id=run.id,
                    changes=changes,
                    progress=progress,
                    good=Side(head, good, None),
                    bad=Side(head, bad, None),
                )
                doc: dict[str, Any] = {
                    "status": "not_reproduced",
                    "metric": metric_name,
                    "culprit": None,
                    "code": head.sha,
                    "run_id": run.id,
                }
                if not changes:  # nothing to measure; the run still ends (not `running`)
                    doc["details"] = {"notes": [*notes, "the two sides do not differ"]}
                    journal.finish_run(run.id, doc["status"], doc)
                    return doc
                try:
                    comp = probe.ensure_references()
                except SideUnmeasurable as exc:  # a retry measures both sides afresh
                    journal.fail_run(run.id, str(exc), retry=exc.shas)
                    raise
                doc["reproduction"] = {
                    "p_value": comp.p_value,
                    "relative_effect": comp.relative_effect,
                }
                if comp.reproduced:
                    result = isolate(
                        changes,
                        probe,
                        available_versions(cfg, repo_path),
                        same_code=probe.same_code,
                    )
                    result.notes = [*notes, *result.notes]
                    doc["status"] = "found"
                    doc["culprit"] = culprit_fields(result)
                    doc["isolation"] = result.to_json()
                journal.finish_run(run.id, doc["status"], doc)
            doc["measurements"] = journal.trial_count(run.id)
    doc["wall_s"] = round(time.monotonic() - t0, 2)
    return doc


def isolate_deps(
    *,
    repo: Path,
    config: Path | None,
    good_lock: Path,
    bad_lock: Path,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """`bisector deps`: HEAD's code with two dependency files standing for the first
    `environment.requirements` entry."""
    requirements = load_config(repo.resolve(), config).environment.requirements
    if not requirements:
        raise ConfigError(
            "bisector deps needs a dependency file to stand in for, and environment.requirements is empty",
            hint="list the file in bisector.yaml, e.g. environment: {requirements: [requirements.txt]}",
        )
    target = requirements[0]
    good: Files = {target: read_side(good_lock)}
    bad: Files = {target: read_side(bad_lock)}
    return isolate_files(
        repo=repo, config=config, metric=None, good=good, bad=bad, what="deps", progress=progress
    )


def isolate_config(
    *,
    repo: Path,
    config: Path | None,
    good: Path,
    bad: Path,
    target: str | None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """`bisector config --good/--bad`: HEAD's code with two versions of one config file."""
    path = config_target(repo, config, bad, target)
    good_files: Files = {path: read_side(good)}
    bad_files: Files = {path: read_side(bad)}
    return isolate_files(
        repo=repo,
        config=config,
        metric=None,
        good=good_files,
        bad=bad_files,
        what="config",
        progress=progress,
    )


def culprit_dependencies(result: Isolation) -> tuple[Dependency, ...]:
    """The culprit's package changes, each with whether its verification passed."""
    verified = {v["name"]: v["verified"] for v in result.verification}
    return tuple(
        replace(Dependency.from_json(d), verified=bool(verified.get(d["name"], False)))
        for d in result.dependencies()
    )


def items_verified(result: Isolation) -> bool | None:
    """Whether every isolated item passed its verification (None: none was checked)."""
    return all(v["verified"] for v in result.verification) if result.verification else None


def culprit_fields(result: Isolation) -> dict[str, Any]:
    """`kind`, `dependencies` and `config_keys` of the contract, each item with `verified`."""
    return {
        "kind": result.kind,
        "dependencies": [d.to_json() for d in culprit_dependencies(result)],
        "config_keys": result.config_keys(),
        "items_verified": items_verified(result),
    }


def apply_isolation(
    result: Isolation,
    culprit: Culprit,
    verification: Verification,
) -> tuple[IsolationSection, Culprit, Verification]:
    """An isolation as the run document's parts: its section, the culprit with the
    isolated kind and items, and the verification with the per-item checks."""
    culprit = replace(
        culprit,
        kind=result.kind,
        dependencies=culprit_dependencies(result),
        config_keys=tuple(result.config_keys()),
        isolated=True,
        items_verified=items_verified(result),
    )
    verification = replace(verification, items=tuple(dict(v) for v in result.verification))
    return IsolationSection.from_json(result.to_json()), culprit, verification
