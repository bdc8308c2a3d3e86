"""The disk steps of an atomic apply: stage a generation, switch the live symlink.

Nothing here decides *whether* to apply (that is `rollback.service`) or remembers intent
(`rollback.journal`); each function is one durable step followed by a named checkpoint.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

from bisector.errors import RollbackError
from bisector.plumbing.atomic import fsync_dir, replace_durably, write_synced
from rollback.checkpoints import point
from rollback.configset import ConfigSet
from rollback.fsutil import exchange
from rollback.layout import Layout, live_state, write_manifest

_KEEP_GENERATIONS = 4  # besides live and previous: a few more undo points, bounded disk use


def new_op_id() -> str:
    return uuid.uuid4().hex[:12]


def gen_name(config_set: ConfigSet, op: str) -> str:
    return f"{config_set.set_id[:12]}-{op}"


def os_reason(exc: OSError) -> str:
    """What the OS said, in words: "no space left on the device", "permission denied"."""
    return {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EROFS: "read-only file system",
    }.get(exc.errno or 0, exc.strerror or str(exc))


def disk_error(exc: OSError, what: str) -> RollbackError:
    """A write before the switch failed (`what`: "stage serving.yaml", "write the rollback
    journal ..."): what the OS said, in words, and that the live set is as it was."""
    return RollbackError(
        f"cannot {what}: {os_reason(exc)}; the live configs were not touched",
        hint="free space or fix permissions beside the target folder, then run the rollback again",
    )


def stage(layout: Layout, config_set: ConfigSet, gen: str, op: str) -> Path:
    """Write `config_set` as generation `gen`, durable and complete, or raise and leave none."""
    staging = layout.staging_dir(op)
    current = "(staging folder)"
    try:
        staging.mkdir()
        dirs = {staging}
        for rel, data in config_set.files.items():
            current = rel
            point("staging_write")
            dest = staging / rel
            if dest.parent not in dirs:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dirs.update(p for p in dest.parents if staging in p.parents or p == staging)
            write_synced(dest, data)
            point("staged_file")
        # Deepest first, so each folder's entries are durable before its parent's.
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(d)
        point("staged")
        current = "(manifest)"
        write_manifest(layout, gen, config_set.set_id, config_set.label, dict(config_set.files))
        replace_durably(staging, layout.gen_dir(gen))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        layout.manifest_path(gen).unlink(missing_ok=True)
        raise disk_error(exc, f"stage {current}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        layout.manifest_path(gen).unlink(missing_ok=True)
        raise
    point("set_ready")
    return layout.gen_dir(gen)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def switch(layout: Layout, gen: str, *, step: str = "switched") -> None:
    """Point the live path at generation `gen` with one rename(2)."""
    _remove(layout.next_link)
    os.symlink(layout.link_value(gen), layout.next_link)
    point("link_created")
    if live_state(layout).kind == "directory":
        # rename(2) cannot put a symlink over a folder; swap the two names atomically
        # instead (its files were captured as the previous generation beforehand).
        if exchange(layout.next_link, layout.target):
            shutil.rmtree(layout.next_link)
        else:  # no RENAME_EXCHANGE: a short window without the live path (put_back_displaced)
            replace_durably(layout.target, layout.displaced_dir)
            point("displaced")
            replace_durably(layout.next_link, layout.target)
            shutil.rmtree(layout.displaced_dir)
    else:
        replace_durably(layout.next_link, layout.target)
    point(step)


def put_back_displaced(layout: Layout) -> None:
    """After a first switch without RENAME_EXCHANGE that stopped between its two renames:
    the old folder goes back to the live path, unless the new link already took it.

    What an apply that failed there, and recovery after a kill there, both do first: the
    live path must never stay missing.
    """
    if not layout.displaced_dir.exists():
        return
    if live_state(layout).kind == "absent":
        replace_durably(layout.displaced_dir, layout.target)
    else:
        shutil.rmtree(layout.displaced_dir)


def unlink_live(layout: Layout, *, step: str = "undo_switched") -> None:
    """Undo of a first apply onto a missing target: the live path goes away again."""
    if layout.target.is_symlink():
        layout.target.unlink()
        fsync_dir(layout.target.parent)
    point(step)


def discard_leftovers(layout: Layout) -> None:
    """Remove staging folders and a temp link an interrupted apply left behind."""
    if layout.sets_dir.is_dir():
        for entry in layout.sets_dir.iterdir():
            if entry.name.startswith(".staging-"):
                shutil.rmtree(entry, ignore_errors=True)
    _remove(layout.next_link)


def collect_garbage(layout: Layout, keep: set[str]) -> None:
    """Drop old generations beyond the newest few; never the ones in `keep`."""
    if not layout.sets_dir.is_dir():
        return
    gens = sorted(
        (e for e in layout.sets_dir.iterdir() if not e.name.startswith(".")),
        key=lambda e: e.stat().st_mtime,
        reverse=True,
    )
    for entry in gens[_KEEP_GENERATIONS:]:
        if entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)
            layout.manifest_path(entry.name).unlink(missing_ok=True)
