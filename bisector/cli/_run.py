"""`bisector run`, `report` and `demo`: bisect, re-render a run, and the CPU demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bisector.cli._common import ConfigOpt, JsonOpt, RepoOpt, emit_json, stderr_console
from bisector.core.types import Status
from bisector.document import Culprit, Reuse, RunDocument
from bisector.plumbing.escape import visible
from bisector.report.wording import confidence_shown, percent, share_note, share_shown


def run(
    good: Annotated[str, typer.Option("--good", help="A ref where the metric was fine.")],
    bad: Annotated[str, typer.Option("--bad", help="A later ref where it regressed.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Metric to bisect on.")] = None,
    builder: Annotated[
        str | None, typer.Option("--builder", help="local | venv | docker (overrides config).")
    ] = None,
    all_commits: Annotated[
        bool, typer.Option("--all-commits", help="Walk into merged branches.")
    ] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="Environments built in parallel in the background.")
    ] = 2,
    json_out: JsonOpt = False,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Where reports go.")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore the journal of an earlier run.")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Roll the configs back to --good when found.")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="local | ray: where trials run (overrides config)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=256, help="Trials in flight at once (ray executor)."),
    ] = None,
) -> int:
    """Find the first bad commit (and the package or config key inside it)."""
    from bisector.cli._common import check_builder, ensure_writable_dir
    from bisector.cli.progress import ConsoleProgress
    from bisector.engine.pipeline import RunRequest, run_bisection
    from bisector.report.files import contract_view

    check_builder(builder)
    if report_dir is not None:
        ensure_writable_dir(report_dir, "--report-dir")
    console = stderr_console()
    req = RunRequest(
        good=good,
        bad=bad,
        repo=repo,
        config=config,
        metric=metric,
        builder=builder,
        all_commits=all_commits,
        jobs=jobs,
        fresh=fresh,
        report_dir=report_dir,
        rollback=rollback,
        executor=executor,
        workers=workers,
    )
    progress = ConsoleProgress(console)
    outcome = run_bisection(req, progress)
    doc = outcome.document
    if json_out:
        emit_json(contract_view(doc))
    _render_run(console, doc, None if progress.resumed is None else progress.resumed.trials)
    return outcome.status.exit_code


def _render_run(console: Any, doc: RunDocument, resumed: int | None = None) -> None:
    """The run's answer on stderr; `resumed`: trials the run had journaled before this
    command resumed it (the reuse line counts only earlier runs' trials)."""
    good, bad = doc.good, doc.bad
    assert good is not None and bad is not None  # a run's document always has its endpoints
    console.print(
        f"{doc.metric}: good {good.ref} = {_value(good.value)}, bad {bad.ref} = {_value(bad.value)}"
        + _endpoint_trials(doc)
    )
    if doc.status is Status.NOT_REPRODUCED:
        console.print(
            "not reproduced: the endpoints rule out a regression of the threshold (exit 3)"
        )
    elif doc.status is Status.INCONCLUSIVE:
        rng = doc.range
        assert rng is not None
        unclear = (
            ""
            if rng.unclear is None
            else f", unclear: {', '.join(u[:10] for u in rng.unclear) or 'none'}"
        )
        console.print(
            f"inconclusive: first bad is in ({rng.last_good[:10]}, {rng.first_bad[:10]}], "
            f"untestable: {', '.join(u[:10] for u in rng.untestable) or 'none'}{unclear} (exit 4)"
        )
        for c in doc.culprits or ():
            _render_culprit(console, c, "verified step", doc)
        if (s := doc.suspect) is not None:
            _render_culprit(console, s, "suspect", doc)
            if s.note:
                console.print(f"  {s.note}")
        for note in doc.details.notes or ():  # e.g. the endpoints' noise (core.nullcheck)
            console.print(f"  {note}")
        console.print(f"next: {next_step(doc)}")
    elif doc.culprit is not None:
        # every regression step of the range, by commit order; the largest is `culprit`
        for c in doc.culprits or (doc.culprit,):
            _render_culprit(console, c, "culprit", doc)
    if resumed is not None:
        console.print(
            f"resumed: {resumed} of this run's {doc.measurements} trials were taken before it "
            f"stopped (not repeated); this command took {doc.wall_s:.2f}s"
        )
    if (reused := doc.reused) is not None:
        console.print(_reuse_line(reused))
    rb = doc.rollback
    if rb:
        console.print(f"rollback to {rb.get('to')}: {rb.get('status')} ({rb.get('target')})")
    console.print(f"report: {doc.report}  (run {doc.run_id})")


def next_step(doc: RunDocument) -> str:
    """What an inconclusive run leaves the on-call engineer to do, by why it stopped."""
    rng = doc.range
    assert rng is not None
    if rng.untestable:
        return (
            f"{len(rng.untestable)} untestable commit(s) lie in that range: see their trial "
            "logs under the run's folder, make them build or run (or check them by hand), "
            "then run the same command again (it reuses the trials it has)"
        )
    if rng.unclear:
        return (
            "the unclear commits measured between the ends: raise benchmark.repeats.max (or the "
            "threshold, above the noise) and run the same command again (it reuses the trials it has)"
        )
    if doc.suspect is not None:
        return (
            f"check the suspect by hand (git show {doc.suspect.commit[:10]}), or run the same "
            "command again on a quieter machine (it reuses the trials it has)"
        )
    return "run the same command again on a quieter machine, or with a larger benchmark.repeats.max"


def _render_culprit(console: Any, c: Culprit, label: str, doc: RunDocument) -> None:
    verified = "" if c.verified else " [UNVERIFIED]"
    share = f", share {shown}" if (shown := share_shown(c)) else ""
    if c.effect is not None:
        effect = percent(c.effect)
    elif c.evidence is not None:  # a parent at 0: no relative effect, the shift itself
        effect = f"{c.evidence.effect:+g} from a parent at 0"
    else:
        effect = "not re-measured"
    console.print(
        f"{label}: {c.commit[:10]} {c.subject!r} ({c.kind}, effect "
        f"{effect}{share}, {confidence_shown(c)}){verified}"
    )
    if note := share_note(doc, c):  # a share far above 100% reads wrong on its own
        console.print(f"  note: {note}")
    for d in c.dependencies:
        first_bad = "" if not d.first_bad_version else f", first bad version {d.first_bad_version}"
        console.print(f"  dependency: {d.name} {d.from_version} -> {d.to_version}{first_bad}")
    main = doc.culprit is not None and c.commit == doc.culprit.commit
    iso = doc.isolation if main else None  # `isolation` is the largest culprit's
    for note in iso.notes if iso is not None else ():  # what isolation could not split
        console.print(f"  note: {visible(note)}")
    values = _key_values(doc) if main else {}
    for k in c.config_keys:
        change = values.get(k)
        old_new = "" if change is None else f": {change[0]} -> {change[1]}"
        console.print(f"  config key: {k}{old_new}")


def _key_values(doc: RunDocument) -> dict[str, tuple[str, str]]:
    """Each config key's old and new value, from the (largest) culprit's isolation."""
    iso = doc.isolation
    if iso is None:
        return {}
    return {
        str(ch.get("key")): (_literal(ch.get("from")), _literal(ch.get("to")))
        for ch in iso.changes
        if ch.get("kind") == "config"
    }


def _literal(value: Any) -> str:
    """A config value as YAML writes it (`false`, `null`, `16`), so `true -> false` reads right."""
    import json

    return "(absent)" if value is None else json.dumps(value, default=str)


def _reuse_line(reused: Reuse) -> str:
    if not reused.trials:
        return f"reused no trials from the journal (builder {reused.builder})"
    runs = ", ".join(reused.runs)
    return (
        f"reused {reused.trials} trial{'' if reused.trials == 1 else 's'} from the journal "
        f"(builder {reused.builder}, "
        f"same benchmark; runs {runs})"
    )


def _endpoint_trials(doc: RunDocument) -> str:
    """` (medians of all 4 and 5 endpoint trials)`: the values are over every trial of the
    ends the run took, not the `reproduce` lines' first few, whose medians differ."""
    if doc.noise is None:
        return ""
    good, bad = doc.noise.good.get("processes"), doc.noise.bad.get("processes")
    if not isinstance(good, int) or not isinstance(bad, int):  # documents from before
        return ""
    return f" (medians of all {good} and {bad} endpoint trials)"


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


LATEST = "latest"  # `bisector report latest`: the newest finished run


def report(
    run_id: Annotated[
        str, typer.Argument(help="Run id from the journal (`bisector runs`), or `latest`.")
    ],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="html | md | json")] = "md",
) -> int:
    """Re-render the report of a run from the journal."""
    from bisector.config import load_config
    from bisector.errors import BisectorError
    from bisector.report.files import contract_view, render_markdown, stored_document
    from bisector.store.journal import JOURNAL_NAME, Journal

    if fmt not in ("html", "md", "json"):
        raise BisectorError(f"unknown format {fmt!r}", hint="use html, md or json")
    cfg = load_config(repo.resolve(), config)  # where the store is, and its snapshots
    store = repo.resolve() / cfg.snapshots.store
    if not (store / JOURNAL_NAME).is_file():  # opening it would create an empty one
        raise BisectorError(f"no runs are recorded in {store}", hint="`bisector run` records one")
    with Journal(store) as journal:
        if run_id == LATEST:
            with journal.reading_back("the newest finished run"):
                latest = journal.latest_finished()
            if latest is None:
                raise BisectorError(
                    f"no finished run is recorded in {store}",
                    hint="`bisector runs` lists the runs; `bisector run` records one",
                )
            run_id = latest.id
        doc = stored_document(journal, run_id, cfg)
        if fmt == "html":
            from bisector.gitrepo import GitRepo
            from bisector.report.html import build_html

            with GitRepo(repo.resolve()) as git:
                sys.stdout.write(
                    build_html(doc, journal=journal, repo=repo.resolve(), cfg=cfg, git=git)
                )
            return 0
    if fmt == "json":
        emit_json(contract_view(doc))
    else:
        sys.stdout.write(render_markdown(doc))
    return 0


DEMO_MARK = "bisector-demo"  # in .git/, so the sample's own tree stays clean


def _check_demo_folder(path: Path) -> None:
    """The demo replaces its folder: only one it made itself (marked), never a user's, nor
    a symlink (to another demo, say: replacing it would remove what it points to)."""
    link = path.is_symlink()
    if link or path.exists() and not (path / ".git" / DEMO_MARK).is_file():
        from bisector.errors import BisectorError

        what = "is a symlink" if link else "exists and was not made by `bisector demo`"
        raise BisectorError(
            f"{path} {what}; refusing to replace it",
            hint="pass another --workdir, or move that folder away",
        )


def demo(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Where the sample repository is built.")
    ] = Path("demo-out"),
) -> int:
    """Build the sample serving repository and run a bisection on it (CPU)."""
    from bisector.cli._common import ensure_writable_dir
    from bisector.cli._snapshot import snapshot_diff
    from bisector.cli.progress import ConsoleProgress
    from bisector.engine.pipeline import RunRequest, run_bisection
    from bisector.testing.sample import SampleSpec, build_sample_repo

    console = stderr_console()
    path = workdir.resolve() / "serving-demo"
    _check_demo_folder(path)
    ensure_writable_dir(workdir.resolve(), "--workdir")
    console.print(f"building the sample serving repository at {path} ...")
    sample = build_sample_repo(path, SampleSpec(mode="real", noise=0.0))
    (path / ".git" / DEMO_MARK).write_text("made by `bisector demo`; it replaces this repository\n")
    console.print(f"  {len(sample.commits)} commits, releases {', '.join(sample.tags)}")
    console.print("\n$ bisector snapshot diff v2.3.1 v2.4.0")
    snapshot_diff("v2.3.1", "v2.4.0", repo=path, config=None, json_out=False)
    console.print("\n$ bisector run --good v2.3.1 --bad v2.4.0")
    outcome = run_bisection(
        RunRequest(good="v2.3.1", bad="v2.4.0", repo=path), ConsoleProgress(console)
    )
    _render_run(console, outcome.document)
    culprit = outcome.document.culprit
    named = culprit.commit if culprit else None
    if named == sample.culprit:
        console.print(f"demo: bisector named the planted culprit {sample.culprit[:10]}")
        return 0
    console.print(f"demo: expected the planted culprit {sample.culprit[:10]}, got {named}")
    return 1
