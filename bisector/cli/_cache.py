"""`bisector cache list | prune`: cached environments (venv folders, docker images)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bisector.cli._common import (
    ConfigOpt,
    JsonOpt,
    RepoOpt,
    check_builder,
    emit_json,
    stderr_console,
)

BuilderOpt = Annotated[
    str | None, typer.Option("--builder", help="local|venv|docker (default: the config's).")
]


def cache_list(
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    builder: BuilderOpt = None,
) -> int:
    """List cached environments (venv folders, docker images)."""
    from bisector.builders.cachecmd import list_cache
    from bisector.config import load_config

    check_builder(builder)

    entries = list_cache(repo, load_config(repo, config), builder=builder)
    if json_out:
        emit_json([e.as_dict() for e in entries])
    else:
        console = stderr_console()
        for e in entries:
            size = _size(e.size_bytes)
            console.print(
                f"{e.kind:7} {e.key:32} {size:>8}  {e.where}{'' if e.in_store else '  (not in this store)'}"
            )
        if not entries:
            console.print("no cached environments")
    return 0


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def cache_prune(
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    builder: BuilderOpt = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=0, help="Keep this many (default: the configured size)."),
    ] = None,
    orphans: Annotated[
        bool,
        typer.Option("--orphans", help="Also remove bisector images this store does not know."),
    ] = False,
    json_out: JsonOpt = False,
) -> int:
    """Remove cached environments beyond the configured size (least recently used first)."""
    from bisector.builders.cachecmd import prune_cache
    from bisector.config import load_config

    check_builder(builder)

    removed = prune_cache(
        repo, load_config(repo, config), builder=builder, keep=keep, orphans=orphans
    )
    if json_out:
        emit_json({"removed": removed})
    else:
        stderr_console().print(f"removed {len(removed)}" + "".join(f"\n  {r}" for r in removed))
    return 0
