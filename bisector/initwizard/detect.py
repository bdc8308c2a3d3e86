"""What `bisector init` finds in a repository: dependency files, config folders, release
tags and an existing benchmark script.

Everything is read from the files tracked at HEAD (git objects, as every later command
reads them): an untracked requirements file is not something a bisection can see at
older commits, so proposing it would only mislead.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from snapshots.configs import is_structured

__all__ = ["Detected", "detect"]

# Folders whose structured files are a service's configuration, by convention.
CONFIG_FOLDERS = ("configs", "config", "conf", "settings", "deploy")
LOCK_FILES = ("uv.lock", "poetry.lock")
BENCH_SCRIPTS = ("bench.py", "benchmark.py", "benchmarks/bench.py")


@dataclass(frozen=True)
class Detected:
    """The repository as `init` sees it at HEAD."""

    dependency_files: tuple[str, ...]  # every dependency file found, for the comment
    requirements: tuple[str, ...]  # the ones proposed for environment.requirements
    config_globs: tuple[str, ...]
    release_tags: tuple[str, ...]  # oldest to newest by version
    bench_script: str | None  # an existing benchmark at the root (bench.py, ...)
    branch: str | None  # for daemon.branch (`daemon_branch`); None: none can be told
    remote: str | None = None  # daemon.remote: the branch exists only as origin's default


def _version(tag: str) -> Version | None:
    try:
        return Version(tag.removeprefix("v").removeprefix("V"))
    except InvalidVersion:
        return None


def release_tags(names: Sequence[str]) -> tuple[str, ...]:
    """Tags that read as versions (`v2.3.1`, `1.0`), oldest to newest by version."""
    versioned = [(v, name) for name in names if (v := _version(name)) is not None]
    return tuple(name for _, name in sorted(versioned))


def _requirements(files: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every dependency file, the ones to propose). One source is proposed, the most
    exact one: a lock file pins everything, then requirements.txt, then pyproject.toml."""
    reqs = sorted(
        p
        for p in files
        if p.endswith(".txt")
        and (
            posixpath.dirname(p) == "requirements"
            or (posixpath.dirname(p) == "" and p.startswith("requirements"))
        )
    )
    found = [p for p in (*LOCK_FILES, "pyproject.toml") if p in files] + reqs
    for choice in (*LOCK_FILES, "requirements.txt"):
        if choice in files:
            return tuple(found), (choice,)
    if reqs:
        return tuple(found), (reqs[0],)
    if "pyproject.toml" in files:
        return tuple(found), ("pyproject.toml",)
    return tuple(found), ()


def _config_globs(files: set[str]) -> tuple[str, ...]:
    globs: list[str] = []
    for folder in CONFIG_FOLDERS:
        suffixes = sorted(
            {
                posixpath.splitext(p)[1].lower()
                for p in files
                if p.startswith(folder + "/") and is_structured(p)
            }
        )
        globs += [f"{folder}/**/*{suffix}" for suffix in suffixes]
    return tuple(globs)


def daemon_branch(git: GitRepo) -> tuple[str | None, str | None]:
    """The branch the daemon should watch, and the remote it is fetched from: the
    checked-out one; on a detached HEAD (a CI checkout, a tag) the one local branch holding
    HEAD, else the one local branch, else among several origin's default, `main` or
    `master`; with no local branch at all, origin's default fetched from origin. None when
    that cannot be told: writing `main` where only `master` exists left a daemon that
    could never resolve it."""
    current = git.current_branch()
    if current is not None:
        return current, None
    candidates = git.local_branches(containing="HEAD") or git.local_branches()
    if len(candidates) == 1:
        return candidates[0], None
    origin = git.remote_default("origin")
    for name in (origin, "main", "master"):
        if name in candidates:
            return name, None
    if not candidates and origin is not None:
        return origin, "origin"
    return None, None


def detect(git: GitRepo) -> Detected:
    """Look at HEAD (a repository without commits yet gives an empty picture)."""
    try:
        head = git.resolve("HEAD")
    except BisectorError:  # no commit yet: nothing is tracked
        files: set[str] = set()
    else:
        files = set(git.list_files(head.sha))
    all_deps, proposed = _requirements(files)
    branch, remote = daemon_branch(git)
    return Detected(
        dependency_files=all_deps,
        requirements=proposed,
        config_globs=_config_globs(files),
        release_tags=release_tags([t.name for t in git.tags()]),
        bench_script=next((p for p in BENCH_SCRIPTS if p in files), None),
        branch=branch,
        remote=remote,
    )
