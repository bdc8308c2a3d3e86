"""Which tags are releases: usable as refs, their labels, the newest-but-one by ancestry
(the daemon's first baseline, the guard's fallback rollback)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace

from bisector.core.types import Commit, Tag
from bisector.errors import BisectorError, RefError
from bisector.gitrepo import GitRepo, is_valid_ref, validate_ref
from bisector.log import get_logger
from bisector.store.daemon_state import LastGood

log = get_logger("bisector.daemon")

# A release's name: `v2.4.0`, `2.4`, `v3.0.0-rc1`.
_VERSION = re.compile(r"[vV]?(\d+(?:\.\d+)*)(?:[-+.][0-9A-Za-z.+-]*)?")


def release_tags(git: GitRepo) -> list[Tag]:
    """The repository's tags (oldest first) that can be used as refs.

    A tag git allows but bisector refuses (one starting with '-', one with a control
    character, a name over 255 characters, one that is also a branch of another commit),
    or one of a tree or a blob, is skipped with one warning naming it, so a single odd tag
    cannot fail every cycle.
    """
    usable: list[Tag] = []
    for name in git.non_commit_tags():
        log.warning(
            "daemon.tag_skipped", tag=name, reason="it names a tree or a blob, not a commit"
        )
    for tag in git.tags():
        try:
            validate_ref(tag.name)
        except RefError as exc:
            log.warning("daemon.tag_skipped", tag=tag.name, reason=exc.message)
            continue
        usable.append(tag)
    rivals = git.rival_branches(usable)
    for name, branch in rivals.items():
        log.warning(
            "daemon.tag_skipped",
            tag=name,
            reason=f"it is also the branch {branch}, of another commit: ambiguous as a ref",
        )
    return [t for t in usable if t.name not in rivals]


def label_of(git: GitRepo, commit: Commit) -> str:
    """A release tag on `commit` that works as a ref (`preferred`), else its id."""
    tags = [t for t in git.tags() if t.sha == commit.sha and is_valid_ref(t.name)]
    rivals = git.rival_branches(tags) if tags else {}
    names = [t.name for t in tags if t.name not in rivals]
    return preferred(names) if names else commit.sha


def _version(name: str) -> tuple[int, ...] | None:
    m = _VERSION.fullmatch(name)
    return None if m is None else tuple(int(part) for part in m[1].split("."))


def preferred(names: Sequence[str]) -> str:
    """Of several tags on one commit, the one that looks like a version (the highest),
    else the last one."""
    versions = [(v, n) for n in names if (v := _version(n)) is not None]
    return max(versions)[1] if versions else names[-1]


def _tagged_newest_first(
    git: GitRepo, head: Commit, tags: Sequence[Tag]
) -> tuple[list[str], dict[str, list[str]]]:
    """The tagged commits reachable from `head`, newest first by ancestry, and their tags."""
    position = {sha: i for i, sha in enumerate(git.topo_order(head.sha))}  # 0: head
    by_commit: dict[str, list[str]] = {}
    for t in tags:  # oldest created first, so `preferred` falls back to the newest
        if t.sha in position:
            by_commit.setdefault(t.sha, []).append(t.name)
    return sorted(by_commit, key=lambda sha: position[sha]), by_commit


def newest_but_one(git: GitRepo, head: Commit, tags: Sequence[Tag] | None = None) -> str | None:
    """The release before the newest one reachable from `head`: of the tagged commits
    newest first by ancestry, the second, named by `preferred`; None with fewer than two.

    By ancestry (`rev-list --topo-order`), not by date: commits made within one second
    tie on dates. `tags`: the usable tags (`release_tags`); listed here when not given.
    """
    shas, by_commit = _tagged_newest_first(git, head, release_tags(git) if tags is None else tags)
    return preferred(by_commit[shas[1]]) if len(shas) >= 2 else None


def initial_last_good(
    git: GitRepo, head: Commit, tags: Sequence[Tag] | None = None
) -> LastGood | None:
    """The newest-but-one release tag reachable from `head` (`newest_but_one`), or the
    only one, if it is not head."""
    listed = release_tags(git) if tags is None else tags
    shas, by_commit = _tagged_newest_first(git, head, listed)
    if len(shas) >= 2:
        sha = shas[1]
    elif len(shas) == 1 and shas[0] != head.sha:
        sha = shas[0]
    else:
        return None
    return LastGood(sha, preferred(by_commit[sha]), time.time())


def still_named(git: GitRepo, good: LastGood) -> LastGood:
    """`good` under a name that still means its commit: the stored ref, unless that tag
    was deleted or moved since it was stored; then the commit's label now (another tag on
    it, else its id), with a `daemon.last_good_renamed` warning.

    A run, an alert or a rollback by the stored name would otherwise fail on every cycle
    (a deleted tag) or measure and roll back to another commit (a moved one)."""
    try:
        if git.resolve(good.ref).sha == good.sha:
            return good
    except BisectorError:
        pass
    name = label_of(git, git.resolve(good.sha))
    log.warning("daemon.last_good_renamed", was=good.ref, commit=good.sha, now=name)
    return replace(good, ref=name)


def still_below(git: GitRepo, good: LastGood, head: Commit) -> bool:
    """Whether the stored last known good is still an ancestor of `head`; if not (history
    rewritten, or its commit no longer in the repository at all: a force-push and a gc, a
    fresh clone beside an old store), a warning, and the caller starts from the releases."""
    try:
        git.resolve(good.sha)
    except BisectorError:
        log.warning("daemon.last_good_gone", last_good=good.sha, ref=good.ref)
        return False
    if git.is_ancestor(good.sha, head.sha):
        return True
    log.warning("daemon.last_good_not_ancestor", last_good=good.sha, head=head.sha)
    return False
