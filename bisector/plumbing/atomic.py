"""Durable file steps: fsync of files and folders, atomic replace, atomic write.

A rename is atomic for readers but only durable once the folder holding it is fsynced;
each helper here does both, so callers cannot forget the second half.

`atomic_write_bytes`: the bytes go to a temporary file in the target's own folder (so
`os.replace` is a rename within one filesystem), are fsynced, renamed over the target,
and the folder is fsynced so the rename itself survives a crash. The temporary file is
removed on any failure, including KeyboardInterrupt.

The rollback's swap of the live symlink (`rollback.fsutil.exchange`) builds on these.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "fsync_dir", "replace_durably", "write_synced"]

_DEFAULT_MODE = 0o644
# fsync of a folder is not supported on some filesystems; that is no failure of ours
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EBADF})


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable.

    :raises OSError: the folder cannot be opened, or the disk reports an error (a
        filesystem that cannot fsync folders at all is let through).
    """
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def write_synced(path: Path, data: bytes, mode: int = _DEFAULT_MODE) -> None:
    """Create `path` (must not exist) with `data`, flushed to disk before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def replace_durably(src: Path, dst: Path) -> None:
    """rename(2) `src` over `dst` and fsync the folder(s) so the switch survives power loss."""
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)
    if Path(src).parent != Path(dst).parent:
        fsync_dir(Path(src).parent)


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
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(folder)


def probe_writable(folder: Path, *, create: bool = False) -> None:
    """Prove a file can be made in `folder` (made first when `create`), before any work
    depends on it; raises the OSError for the caller to word."""
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".bisector-write-test-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()
