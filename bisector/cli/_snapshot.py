"""`bisector snapshot take | list | show | diff`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bisector.cli._common import ConfigOpt, JsonOpt, RepoOpt, emit_json, stderr_console


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


def snapshot_list(
    repo: RepoOpt = Path("."), config: ConfigOpt = None, json_out: JsonOpt = False
) -> int:
    """List stored snapshots (the newest of each commit), marking damaged ones.

    A damaged snapshot is listed (state DAMAGED, `damaged` in JSON) with the rest, then
    the command exits 2 with an `error:` line, so a script or cron job notices it.
    """
    from bisector.config import load_config
    from bisector.errors import StoreError
    from snapshots.api import list_stored
    from snapshots.render import listing_renderable

    listed = list_stored(repo, load_config(repo, config))
    if json_out:
        emit_json([item.to_json() for item in listed])
    else:
        stderr_console().print(listing_renderable(listed))
    damaged = [item for item in listed if item.damage is not None]
    if len(damaged) == 1 and (damage := damaged[0].damage) is not None:
        e = damaged[0].entry
        raise StoreError(
            f"snapshot {e.id[:12]} (commit {e.commit[:10]}) is damaged: {damage.message}",
            hint=damage.hint,
        )
    if damaged:
        named = ", ".join(f"{i.entry.id[:12]} (commit {i.entry.commit[:10]})" for i in damaged)
        commits = " ".join(i.entry.commit[:10] for i in damaged)
        raise StoreError(
            f"{len(damaged)} of {len(listed)} snapshots are damaged: {named}",
            hint="the store was modified outside bisector; re-take them with "
            f"`bisector snapshot take {commits}`",
        )
    return 0


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
