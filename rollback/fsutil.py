"""The rollback's own file-system step: the atomic exchange of two names.

The durable steps it shares with the rest of bisector (fsync of files and folders,
atomic replace and write) live in `bisector.plumbing.atomic`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

from bisector.plumbing.atomic import fsync_dir

_RENAME_EXCHANGE = 2  # linux/fs.h


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two names (Linux renameat2 RENAME_EXCHANGE); False if unsupported.

    Used once per target, to turn a real live folder into bisector's symlink without a
    moment where the live path does not exist.
    """
    libc = _libc()
    fn = getattr(libc, "renameat2", None) if libc is not None else None
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            return False
        raise OSError(err, os.strerror(err), str(a))
    fsync_dir(b.parent)
    return True
