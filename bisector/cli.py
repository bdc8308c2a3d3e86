"""The command line: parse, load config, call one library function, render.

This is the only module (with the daemon's entry) that prints or exits. Heavy modules
are imported inside the commands so `bisector --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bisector.errors import BisectorError, NotImplementedYet

app = typer.Typer(
    name="bisector",
    help=(
        "Find which commit, dependency upgrade or config key made a model-serving stack "
        "slower, hungrier or less accurate, and roll the configs back.\n\n"
        "Exit codes of run: 0 culprit found, 3 not reproduced, 4 inconclusive, "
        "2 bad input, 1 internal error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
snapshot_app = typer.Typer(help="Capture, list, show and diff release snapshots.", no_args_is_help=True)
config_app = typer.Typer(
    help="bisector.yaml helpers, and config-key isolation (`bisector config --good FILE --bad FILE`).",
    no_args_is_help=True,
)
cache_app = typer.Typer(help="Cached environments and images.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(config_app, name="config")
app.add_typer(cache_app, name="cache")

RepoOpt = Annotated[
    Path, typer.Option("--repo", help="Repository to work on.", show_default="current folder")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="bisector.yaml to use.", show_default="<repo>/bisector.yaml"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]

_state: dict[str, bool] = {"debug": False}


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines to stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log debug events.")] = False,
) -> None:
    _state["debug"] = debug
    from bisector.log import configure

    configure(json_lines=log_json, verbose=verbose or debug)


def _not_yet(what: str) -> NoReturn:
    raise NotImplementedYet(f"`bisector {what}` is not available in this version yet")


def emit_json(doc: Any) -> None:
    """The one place that writes JSON documents to stdout."""
    import json

    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


# --- run -------------------------------------------------------------------------------


@app.command()
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
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore the journal of an earlier run.")] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Roll the configs back to --good when found.")
    ] = False,
) -> int:
    """Find the first bad commit (and the package or config key inside it)."""
    from bisector.pipeline import RunRequest, run_bisection
    from bisector.progress import ConsoleProgress
    from bisector.report import contract_view

    if builder is not None and builder not in ("local", "venv", "docker"):
        from bisector.errors import ConfigError

        raise ConfigError(f"unknown builder {builder!r}", hint="use local, venv or docker")
    console = stderr_console()
    req = RunRequest(
        good=good, bad=bad, repo=repo, config=config, metric=metric, builder=builder,
        all_commits=all_commits, jobs=jobs, fresh=fresh, report_dir=report_dir, rollback=rollback,
    )
    outcome = run_bisection(req, ConsoleProgress(console))
    doc = outcome.document
    if json_out:
        emit_json(contract_view(doc))
    _render_run(console, doc)
    return outcome.status.exit_code


def _render_run(console: Any, doc: dict[str, Any]) -> None:
    status = doc["status"]
    good, bad = doc["good"], doc["bad"]
    console.print(
        f"{doc['metric']}: good {good['ref']} = {good['value']:.3f}, bad {bad['ref']} = {bad['value']:.3f}"
    )
    if status == "not_reproduced":
        console.print("not reproduced: the endpoints are not significantly different (exit 3)")
    elif status == "inconclusive":
        rng = doc["range"]
        console.print(
            f"inconclusive: first bad is in ({rng['last_good'][:10]}, {rng['first_bad'][:10]}], "
            f"untestable: {', '.join(u[:10] for u in rng['untestable']) or 'none'} (exit 4)"
        )
    else:
        c = doc["culprit"]
        verified = "" if c.get("verified", True) else " [UNVERIFIED]"
        console.print(
            f"culprit: {c['commit'][:10]} {c['subject']!r} ({c['kind']}, effect "
            f"{(c['effect'] or 0) * 100:+.1f}%, confidence {c['confidence']:.3f}){verified}"
        )
        for d in c.get("dependencies") or []:
            console.print(f"  dependency: {d['name']} {d['from']} -> {d['to']}")
        for k in c.get("config_keys") or []:
            console.print(f"  config key: {k}")
    rb = doc.get("rollback")
    if rb:
        console.print(f"rollback to {rb.get('to')}: {rb.get('status')} ({rb.get('target')})")
    console.print(f"report: {doc.get('report')}  (run {doc.get('run_id')})")


# --- snapshots -------------------------------------------------------------------------


@snapshot_app.command("take")
def snapshot_take(
    refs: Annotated[list[str], typer.Argument(help="Refs to snapshot.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Snapshot configs and dependencies of each REF (a no-op when already stored)."""
    from bisector.config import load_config
    from snapshots.api import take
    from snapshots.render import snapshots_table

    snaps = take(repo, load_config(repo, config), refs)
    if json_out:
        emit_json([s.to_json() for s in snaps])
    else:
        stderr_console().print(snapshots_table(snaps, title="taken"))
    return 0


@snapshot_app.command("list")
def snapshot_list(repo: RepoOpt = Path("."), config: ConfigOpt = None, json_out: JsonOpt = False) -> int:
    """List stored snapshots (the newest of each commit)."""
    from bisector.config import load_config
    from snapshots.api import list_snapshots
    from snapshots.render import snapshots_table

    snaps = list_snapshots(repo, load_config(repo, config))
    if json_out:
        emit_json([s.to_json() for s in snaps])
    else:
        stderr_console().print(snapshots_table(snaps))
    return 0


@snapshot_app.command("show")
def snapshot_show(
    ref: Annotated[str, typer.Argument(help="Ref or snapshot id.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Show one snapshot (with the newest environment attached per key)."""
    from bisector.config import load_config
    from snapshots.api import show
    from snapshots.render import snapshot_renderable

    snap = show(repo, load_config(repo, config), ref)
    if json_out:
        emit_json(snap.to_json())
    else:
        stderr_console().print(snapshot_renderable(snap))
    return 0


@snapshot_app.command("diff")
def snapshot_diff(
    a: Annotated[str, typer.Argument(help="Older ref.")],
    b: Annotated[str, typer.Argument(help="Newer ref.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Config keys and packages that changed between two snapshots, with risk levels.

    A ref without a stored snapshot is snapshotted first (and kept).
    """
    from bisector.config import load_config
    from snapshots.api import diff
    from snapshots.render import diff_renderable

    result = diff(repo, load_config(repo, config), a, b)
    if json_out:
        emit_json(result.to_json())
    else:
        stderr_console().print(diff_renderable(result))
    return 0


# --- rollback and control --------------------------------------------------------------


@app.command()
def rollback(
    to: Annotated[str, typer.Option("--to", help="Ref or snapshot id to roll back to.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    target: Annotated[Path | None, typer.Option("--target", help="Live config folder.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
    timeout: Annotated[str | None, typer.Option("--timeout", help="e.g. 30s")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite drifted live files.")] = False,
    json_out: JsonOpt = False,
) -> int:
    """Emergency: atomically put the configs of a good snapshot back."""
    from bisector.config import load_config
    from bisector.errors import RollbackError
    from rollback.entry import rollback_from_config
    from rollback.render import describe

    if not yes and not dry_run and not sys.stdin.isatty():
        raise RollbackError(
            "refusing to roll back without confirmation (stdin is not a terminal)",
            hint="pass --yes to confirm, or --dry-run to see the plan",
        )
    cfg = load_config(repo, config)
    console = stderr_console()

    def confirm(preview: Any) -> bool:
        for line in describe(preview):
            console.print(line, markup=False)
        return bool(typer.confirm("apply this rollback?", default=False, err=True))

    result = rollback_from_config(
        repo, cfg, to, target=target, timeout=timeout, dry_run=dry_run, force=force,
        confirm=None if (yes or dry_run) else confirm,
    )
    if result is None:
        console.print("cancelled; nothing was changed")
        return 1
    if json_out:
        emit_json(result.to_json())
    else:
        for line in describe(result):
            console.print(line, markup=False)
    return result.exit_code


@app.command()
def status(repo: RepoOpt = Path("."), config: ConfigOpt = None, json_out: JsonOpt = False) -> int:
    """Paused or not, the last daemon cycle and rollback."""
    from bisector.config import load_config
    from bisector.daemon.status import daemon_status
    from rollback.entry import control_status

    cfg = load_config(repo, config)
    doc = control_status(repo, cfg)
    doc["daemon"] = daemon_status(repo.resolve(), cfg)
    if json_out:
        emit_json(doc)
        return 0
    console = stderr_console()
    if doc["recovered"]:
        console.print(f"recovered: {doc['recovered']}", markup=False)
    if doc["paused"]:
        console.print(f"PAUSED since {doc['since']} by {doc['by']}: {doc['reason']}", markup=False)
    else:
        console.print("not paused")
    last = doc["last_rollback"]
    if last is None:
        console.print("last rollback: none")
    else:
        why = f" ({last['reason']})" if last.get("reason") else ""
        console.print(
            f"last rollback: {last['at']} {last['target']} -> {last['to']}: {last['status']}{why}",
            markup=False,
        )
    live = doc.get("target")
    if live is not None:
        console.print(f"target: {live['path']} ({live['kind']}), live set: {live['live']}", markup=False)
        if live["rollback_running"]:
            console.print("a rollback is running now")
        if live["drift"]:
            console.print("drifted: " + ", ".join(live["drift"]), markup=False)
    for line in _daemon_lines(doc["daemon"]):
        console.print(line, markup=False)
    return 0


def _daemon_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"daemon: {'running' if d['running'] else 'not running'}"]
    good = d["last_good"]
    lines.append(f"last known good: {good['ref']} ({good['commit'][:10]})" if good else "last known good: none yet")
    for c in d["cycles"]:
        lines.append(f"  cycle {c['id']} {c['started']} {c['status']}: {c['outcome'] or '-'}")
    for r in d["ranges"]:
        lines.append(
            f"  range {r['good'][:10]}..{r['bad'][:10]}: {r['phase']} {r['status'] or ''} "
            f"{('culprit ' + r['culprit'][:10]) if r['culprit'] else ''} run {r['run_id'] or '-'}".rstrip()
        )
    return lines


@app.command()
def pause(repo: RepoOpt = Path("."), config: ConfigOpt = None) -> int:
    """Stop the daemon and automatic rollbacks from acting until `resume`."""
    from bisector.config import load_config
    from rollback.entry import pause as pause_bisector

    state = pause_bisector(repo, load_config(repo, config))
    stderr_console().print(f"paused since {state.since}: {state.reason}", markup=False)
    return 0


@app.command()
def resume(repo: RepoOpt = Path("."), config: ConfigOpt = None) -> int:
    """Lift a pause."""
    from bisector.config import load_config
    from rollback.entry import resume as resume_bisector

    lifted = resume_bisector(repo, load_config(repo, config))
    message = f"resumed (was paused: {lifted.reason})" if lifted.paused else "not paused; nothing to do"
    stderr_console().print(message, markup=False)
    return 0


@app.command()
def daemon(
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
) -> int:
    """Nightly: snapshot releases, hunt regressions, alert, pause."""
    from bisector.daemon.service import run_daemon
    from bisector.log import configure

    configure(json_lines=True, verbose=_state["debug"])  # the daemon logs JSON lines
    return run_daemon(repo, config, once=once)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id from the journal.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="html | md | json")] = "md",
) -> int:
    """Re-render the report of a run from the journal."""
    from bisector.config import load_config
    from bisector.journal import Journal
    from bisector.report import contract_view, render_markdown

    cfg = load_config(repo.resolve(), config)
    with Journal(repo.resolve() / cfg.snapshots.store) as journal:
        run_row = journal.run(run_id)
        if run_row.result is None:
            from bisector.errors import StoreError

            raise StoreError(f"run {run_id} has not finished", hint="run the same `bisector run` again to resume it")
        if fmt == "html":
            from bisector.gitrepo import GitRepo
            from bisector.report_html import build_html

            with GitRepo(repo.resolve()) as git:
                sys.stdout.write(build_html(run_row.result, journal=journal, repo=repo.resolve(), cfg=cfg, git=git))
            return 0
    if fmt == "json":
        emit_json(contract_view(run_row.result))
    elif fmt == "md":
        sys.stdout.write(render_markdown(run_row.result))
    else:
        from bisector.errors import BisectorError

        raise BisectorError(f"unknown format {fmt!r}", hint="use html, md or json")
    return 0


@app.command()
def deps(
    good_lock: Annotated[Path, typer.Option("--good-lock", help="Good dependency file.")],
    bad_lock: Annotated[Path, typer.Option("--bad-lock", help="Bad dependency file.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Same code (HEAD), two dependency sets: which package change regressed."""
    from bisector.config import load_config

    cfg = load_config(repo.resolve(), config)
    target = cfg.environment.requirements[0]
    return _isolate_standalone(repo, config, json_out, "deps", {target: _read(good_lock)}, {target: _read(bad_lock)})


# --- isolation on HEAD's code (issue 5) ---------------------------------------------------

GoodOpt = Annotated[Path | None, typer.Option("--good", help="Good config file.")]
BadOpt = Annotated[Path | None, typer.Option("--bad", help="Bad config file.")]
TargetOpt = Annotated[
    str | None,
    typer.Option("--target", help="Repo path of the config file they stand for.", show_default="matched by name"),
]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        from bisector.errors import ConfigError

        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def _config_target(repo: Path, config: Path | None, bad: Path, target: str | None) -> str:
    """The repo path of the config file `--good/--bad` stand for."""
    if target is not None:
        return target
    root = repo.resolve()
    if bad.resolve().is_relative_to(root):
        return bad.resolve().relative_to(root).as_posix()
    from bisector.config import load_config
    from bisector.gitrepo import GitRepo
    from snapshots.configs import match_globs

    cfg = load_config(root, config)
    with GitRepo(root) as git:
        files = match_globs(git.list_files(git.resolve("HEAD").sha), cfg.snapshots.configs)
    same = [f for f in files if f.rsplit("/", 1)[-1] == bad.name]
    if len(same) != 1:
        from bisector.errors import ConfigError

        raise ConfigError(f"cannot tell which config file {bad.name} stands for", hint="pass --target PATH")
    return same[0]


def _isolate_standalone(
    repo: Path, config: Path | None, json_out: bool, what: str, good: dict[str, bytes | None],
    bad: dict[str, bytes | None],
) -> int:
    from bisector.isolate_run import isolate_files
    from bisector.progress import ConsoleProgress

    console = stderr_console()
    doc = isolate_files(repo=repo, config=config, metric=None, good=good, bad=bad, what=what,
                        progress=ConsoleProgress(console))
    if json_out:
        emit_json(doc)
    culprit = doc.get("culprit")
    if culprit is None:
        console.print(f"not reproduced: the two {what} sides do not differ significantly")
        return 3
    for dep in culprit["dependencies"]:
        first = f" (first bad {dep['first_bad_version']})" if dep.get("first_bad_version") else ""
        mark = "" if dep.get("verified") else " [unverified]"
        console.print(f"culprit package: {dep['name']} {dep['from']} -> {dep['to']}{first}{mark}")
    for key in culprit["config_keys"]:
        console.print(f"culprit config key: {key}")
    return 0


@config_app.callback(invoke_without_command=True)
def config_group(
    ctx: typer.Context,
    good: GoodOpt = None,
    bad: BadOpt = None,
    target: TargetOpt = None,
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """With --good FILE --bad FILE: same code (HEAD), two config files: which key regressed."""
    if ctx.invoked_subcommand is not None:
        return 0
    if good is None or bad is None:
        from bisector.errors import ConfigError

        raise ConfigError("config isolation needs both --good FILE and --bad FILE",
                          hint="or use `bisector config schema` / `bisector config check`")
    path = _config_target(repo, config, bad, target)
    return _isolate_standalone(repo, config, json_out, "config", {path: _read(good)}, {path: _read(bad)})


@config_app.command("isolate")
def config_isolate(
    good: Annotated[Path, typer.Option("--good", help="Good config file.")],
    bad: Annotated[Path, typer.Option("--bad", help="Bad config file.")],
    target: TargetOpt = None,
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Same as `bisector config --good FILE --bad FILE`."""
    path = _config_target(repo, config, bad, target)
    return _isolate_standalone(repo, config, json_out, "config", {path: _read(good)}, {path: _read(bad)})


@config_app.command("schema")
def config_schema() -> int:
    """Print the JSON schema of bisector.yaml (for editors)."""
    from bisector.config import json_schema

    emit_json(json_schema())
    return 0


@config_app.command("check")
def config_check(repo: RepoOpt = Path("."), config: ConfigOpt = None) -> int:
    """Validate bisector.yaml."""
    from bisector.config import find_config, load_config

    load_config(repo, config)
    stderr_console().print(f"{find_config(repo, config)}: ok")
    return 0


BuilderOpt = Annotated[str | None, typer.Option("--builder", help="local|venv|docker (default: the config's).")]


@cache_app.command("list")
def cache_list(repo: RepoOpt = Path("."), config: ConfigOpt = None, json_out: JsonOpt = False,
               builder: BuilderOpt = None) -> int:
    """List cached environments (venv folders, docker images)."""
    from bisector.builders.cachecmd import list_cache
    from bisector.config import load_config

    entries = list_cache(repo, load_config(repo, config), builder=builder)
    if json_out:
        emit_json([e.as_dict() for e in entries])
    else:
        console = stderr_console()
        for e in entries:
            size = f"{e.size_bytes / 1e6:.0f} MB" if e.size_bytes is not None else "-"
            console.print(f"{e.kind:7} {e.key:32} {size:>8}  {e.where}{'' if e.in_store else '  (not in this store)'}")
        if not entries:
            console.print("no cached environments")
    return 0


@cache_app.command("prune")
def cache_prune(repo: RepoOpt = Path("."), config: ConfigOpt = None, builder: BuilderOpt = None,
                keep: Annotated[int | None, typer.Option("--keep", min=0, help="Keep this many (default: the configured size).")] = None,
                orphans: Annotated[bool, typer.Option("--orphans", help="Also remove bisector images this store does not know.")] = False,
                json_out: JsonOpt = False) -> int:
    """Remove cached environments beyond the configured size (least recently used first)."""
    from bisector.builders.cachecmd import prune_cache
    from bisector.config import load_config

    removed = prune_cache(repo, load_config(repo, config), builder=builder, keep=keep, orphans=orphans)
    if json_out:
        emit_json({"removed": removed})
    else:
        stderr_console().print(f"removed {len(removed)}" + "".join(f"\n  {r}" for r in removed))
    return 0


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Where the sample repository is built.")
    ] = Path("demo-out"),
) -> int:
    """Build the sample serving repository and run a bisection on it (CPU)."""
    from bisector.pipeline import RunRequest, run_bisection
    from bisector.progress import ConsoleProgress
    from bisector.sample import SampleSpec, build_sample_repo

    console = stderr_console()
    path = workdir.resolve() / "serving-demo"
    console.print(f"building the sample serving repository at {path} ...")
    sample = build_sample_repo(path, SampleSpec(mode="real", noise=0.0))
    console.print(f"  {len(sample.commits)} commits, releases {', '.join(sample.tags)}")
    console.print("\n$ bisector snapshot diff v2.3.1 v2.4.0")
    snapshot_diff("v2.3.1", "v2.4.0", repo=path, config=None, json_out=False)
    console.print("\n$ bisector run --good v2.3.1 --bad v2.4.0")
    outcome = run_bisection(
        RunRequest(good="v2.3.1", bad="v2.4.0", repo=path), ConsoleProgress(console)
    )
    _render_run(console, outcome.document)
    culprit = outcome.document.get("culprit") or {}
    if culprit.get("commit") == sample.culprit:
        console.print(f"demo: bisector named the planted culprit {sample.culprit[:10]}")
        return 0
    console.print(f"demo: expected the planted culprit {sample.culprit[:10]}, got {culprit.get('commit')}")
    return 1


# --- entry -----------------------------------------------------------------------------


def _print_error(err: BisectorError) -> None:
    sys.stderr.write(f"error: {err.message}\n")
    if err.hint:
        sys.stderr.write(f"hint: {err.hint}\n")


def main(argv: list[str] | None = None) -> NoReturn:
    try:
        rv = app(args=argv, prog_name="bisector", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    except BisectorError as exc:
        if _state["debug"]:
            import traceback

            traceback.print_exc()
        _print_error(exc)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into exit 1
        show = getattr(exc, "show", None)
        if callable(show):  # a usage error of the argument parser: bad input, exit 2
            show()
            sys.exit(2)
        if _state["debug"] or os.environ.get("BISECTOR_DEBUG"):
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"error: internal error: {type(exc).__name__}: {exc}\n")
        sys.stderr.write("hint: run again with --debug for the traceback\n")
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
