"""A candidate's checkout as a tar archive, for workers that share no filesystem with us.

A commit is archived from git objects (`git archive`, no worktree needed); a synthetic
state of isolation (a folder the overlay wrote) is archived from its folder.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

from bisector.errors import GitError

_SHA = re.compile(r"^[0-9a-f]{40}$")


def commit_archive(repo: Path, sha: str) -> bytes:
    """`git archive --format=tar` of commit `sha` (a full id; anything else is refused)."""
    if not _SHA.match(sha):
        raise GitError(f"not a full commit id: {sha!r}")
    proc = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", sha],
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise GitError(f"git archive {sha[:12]} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def folder_archive(folder: Path) -> bytes:
    """A tar of `folder`'s files (its `.git` left out), paths relative to it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if rel.parts[0] == ".git":
                continue
            tar.add(path, arcname=str(rel), recursive=False)
    return buffer.getvalue()
