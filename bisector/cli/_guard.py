"""`bisector guard`: live metrics in Prometheus, a rollback on a held breach."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bisector.cli._common import ConfigOpt, JsonOpt, RepoOpt, emit_json, stderr_console


def guard(
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate every check once and exit.")
    ] = False,
    json_out: JsonOpt = False,
) -> int:
    """Watch the guard's checks in Prometheus; roll back on a held breach.

    Exit codes of --once: 0 ok, 6 breached (or canary failed / inconclusive) and acted,
    7 blind (no data: never a reason to act).
    """
    from bisector.config import load_config
    from bisector.guard.service import Evaluation, run_guard

    cfg = load_config(repo, config)
    console = stderr_console()

    def show(evaluation: Evaluation) -> None:
        if json_out:
            emit_json(evaluation.to_json())
            return
        for line in evaluation_lines(evaluation.to_json()):
            console.print(line, markup=False)

    return run_guard(repo, cfg, once=once, on_evaluation=show)


def evaluation_lines(doc: dict[str, Any]) -> list[str]:
    from bisector.guard.rules import show_value

    lines = [f"guard: {doc['outcome']}"]
    for c in doc["checks"]:
        lines.append(f"  {c['name']}: {c['state']} (value {show_value(c['value'])}): {c['reason']}")
    lines += [f"  action: {a}" for a in doc["actions"]]
    return lines
