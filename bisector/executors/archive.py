"""A candidate's checkout as a tar archive, for workers that share no filesystem with us.

A commit is archived from git objects (`git archive`, no worktree needed); a synthetic
state of isolation (a folder the overlay wrote) is archived from its folder. Symlinks are
archived as they are.

A worker unpacks it with tar's `data` filter, which never writes outside the checkout.
A symlink that leads out of the checkout (an absolute target such as `/etc/hosts`, or a
relative one such as `../../etc`) is left out instead of failing the whole checkout: a
benchmark that does not need it measures as with the local executor (whose worktree has
the link as it is), and one that does fails with a reason naming the link
(`missing_links`). The driver warns of such links once, when it packs the commit
(`leading_out`). Any other entry the filter refuses stops the trial with an error.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bisector.engine.trialreason import shown
from bisector.errors import BisectorError, GitError
from bisector.log import get_logger

log = get_logger("bisector.ray")

_SHA = re.compile(r"^[0-9a-f]{40}$")
_LINKS_NAMED = 3  # in a trial's reason: the rest are counted


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


def checkout_archive(repo: Path, sha: str, folder: Path | None, *, warned: set[str]) -> bytes:
    """The archive of `folder` (a synthetic state) or else of commit `sha`; a warning for
    each symlink in it that workers leave out, unless already in `warned` (then added)."""
    data = folder_archive(folder) if folder is not None else commit_archive(repo, sha)
    for link in leading_out(data):
        if link not in warned:
            warned.add(link)
            log.warning("symlink leads out of the checkout: Ray workers leave it out", link=link)
    return data


def _name(member: tarfile.TarInfo) -> str:
    return member.name.lstrip("/")  # as the data filter extracts it


def _leads_out(member: tarfile.TarInfo) -> bool:
    """A symlink whose target, read as text, is absolute or climbs out of the checkout.
    Judged on the text alone, so the driver, which has no checkout, names them as the
    workers leave them out; the data filter also catches a link out through another."""
    if not member.issym():
        return False
    target = member.linkname
    if posixpath.isabs(target):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(_name(member)), target))
    return resolved == ".." or resolved.startswith("../")


def _shown_link(member: tarfile.TarInfo) -> str:
    return shown(f"{_name(member)} -> {member.linkname}")


def leading_out(archive: bytes) -> list[str]:
    """The symlinks of `archive` ("name -> target") that a worker leaves out."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return [_shown_link(m) for m in tar.getmembers() if _leads_out(m)]


def _filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    if _leads_out(member):
        return None
    try:
        return tarfile.data_filter(member, dest)
    except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
        return None  # a link out through links unpacked before it: left out likewise
    except tarfile.FilterError as exc:  # not picklable: Ray could not send it back
        raise BisectorError(
            f"the checkout cannot be unpacked: {shown(str(exc))}",
            hint="tar's data filter refuses this entry on every worker: remove it from the "
            "commit, or run this commit with the local executor",
        ) from None


def _extract(archive: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter=_filter)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # mkdtemp's 0700 would hide the checkout from a container's user (docker: `nobody`,
    # through a mount); a git checkout's folder is world-readable.
    tmp.chmod(0o755)
    try:
        tmp.rename(dest)
    except OSError:  # another trial on this node unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)


def unpack(archive: bytes, dest: Path) -> tuple[Path, list[str]]:
    """The checkout at `dest`, unpacked from `archive` unless already there (atomic), and
    the links of `archive` ("name -> target") it lacks: those left out (module docstring)."""
    if not dest.is_dir():
        _extract(archive, dest)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        links = [m for m in tar.getmembers() if m.issym() or m.islnk()]
    return dest, [_shown_link(m) for m in links if not os.path.lexists(dest / _name(m))]


def missing_links(links: Sequence[str]) -> str:
    """The words a failed trial's reason ends with when its checkout lacks `links`."""
    named = ", ".join(links[:_LINKS_NAMED])
    more = f" and {len(links) - _LINKS_NAMED} more" if len(links) > _LINKS_NAMED else ""
    return (
        f"; its checkout on the worker lacks {named}{more} "
        "(a symlink that leads out of the checkout is not unpacked on Ray workers)"
    )
