"""Atomic file writes: readers see the old bytes or the new bytes, never a mix.

The bytes go to a temporary file in the target's own folder (so `os.replace` is a
rename within one filesystem), are fsynced, renamed over the target, and the folder is
fsynced so the rename itself survives a crash. The temporary file is removed on any
failure, including KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "fsync_dir"]

_DEFAULT_MODE = 0o644


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable (a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` atomically and durably.

    `mode`: permission bits of the new file; by default those of the file it replaces,
    or 0o644 for a new file (mkstemp alone would leave 0o600).
    :raises OSError: the folder is missing or not writable, the disk is full, ...
    """
    path = Path(path)
    folder = path.parent
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _DEFAULT_MODE
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(folder)
