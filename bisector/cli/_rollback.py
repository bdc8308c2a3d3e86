"""`bisector rollback`, `status`, `pause`, `resume` and `daemon`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bisector.cli._common import ConfigOpt, JsonOpt, RepoOpt, emit_json, state, stderr_console


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
        repo,
        cfg,
        to,
        target=target,
        timeout=timeout,
        dry_run=dry_run,
        force=force,
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


def status(repo: RepoOpt = Path("."), config: ConfigOpt = None, json_out: JsonOpt = False) -> int:
    """Paused or not, the last daemon cycle and rollback."""
    from bisector.config import load_config
    from bisector.daemon.status import status_document, status_lines

    doc = status_document(repo, load_config(repo, config))
    if json_out:
        emit_json(doc)
        return 0
    console = stderr_console()
    for line in status_lines(doc):
        console.print(line, markup=False)
    return 0


def pause(repo: RepoOpt = Path("."), config: ConfigOpt = None) -> int:
    """Stop the daemon and automatic rollbacks from acting until `resume`."""
    from bisector.config import load_config
    from rollback.entry import pause as pause_bisector

    paused = pause_bisector(repo, load_config(repo, config))
    stderr_console().print(f"paused since {paused.since}: {paused.reason}", markup=False)
    return 0


def resume(repo: RepoOpt = Path("."), config: ConfigOpt = None) -> int:
    """Lift a pause."""
    from bisector.config import load_config
    from rollback.entry import resume as resume_bisector

    lifted = resume_bisector(repo, load_config(repo, config))
    message = (
        f"resumed (was paused: {lifted.reason})" if lifted.paused else "not paused; nothing to do"
    )
    stderr_console().print(message, markup=False)
    return 0


def daemon(
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
) -> int:
    """Nightly: snapshot releases, hunt regressions, alert, pause."""
    from bisector.daemon.service import run_daemon
    from bisector.log import configure

    configure(json_lines=True, verbose=state["debug"])  # the daemon logs JSON lines
    return run_daemon(repo, config, once=once)
