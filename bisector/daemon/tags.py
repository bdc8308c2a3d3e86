"""Which tags the daemon can use as refs: release tags, its labels, its first baseline."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bisector.core.types import Commit, Tag
from bisector.errors import RefError
from bisector.gitrepo import GitRepo, is_valid_ref, validate_ref
from bisector.log import get_logger
from bisector.store.daemon_state import LastGood

log = get_logger("bisector.daemon")


def release_tags(git: GitRepo) -> list[Tag]:
    """The repository's tags (oldest first) that can be used as refs.

    A tag git allows but bisector refuses (one starting with '-', one with a control
    character, a name over 255 characters) is skipped with one warning naming it, so a
    single odd tag cannot fail every cycle.
    """
    usable: list[Tag] = []
    for tag in git.tags():
        try:
            validate_ref(tag.name)
        except RefError as exc:
            log.warning("daemon.tag_skipped", tag=tag.name, reason=exc.message)
            continue
        usable.append(tag)
    return usable


def label_of(git: GitRepo, commit: Commit) -> str:
    tags = [name for name in git.tags_at(commit.sha) if is_valid_ref(name)]
    return tags[-1] if tags else commit.sha


def initial_last_good(
    git: GitRepo, head: Commit, tags: Sequence[Tag] | None = None
) -> LastGood | None:
    """The newest-but-one release tag reachable from `head` (or the only one, if not head).

    `tags`: the usable tags (`release_tags`); listed here when not given.
    """
    listed = release_tags(git) if tags is None else tags
    reachable = [t for t in listed if t.sha == head.sha or git.is_ancestor(t.sha, head.sha)]
    distinct: list[tuple[str, str]] = []
    for t in reachable:  # oldest first; one entry per commit
        if not distinct or distinct[-1][1] != t.sha:
            distinct.append((t.name, t.sha))
    if len(distinct) >= 2:
        name, sha = distinct[-2]
    elif len(distinct) == 1 and distinct[0][1] != head.sha:
        name, sha = distinct[0]
    else:
        return None
    return LastGood(sha, name, time.time())
