"""Where config sets come from: the `ConfigSource` seam and its two implementations.

`resolve_source` is the one function the CLI and the daemon call: it reads a snapshot's
files from the verified store (`SnapshotConfigSource`). `GitConfigSource` reads the same
files straight from git objects, never the working tree; a dry run uses it for a ref not
snapshotted yet, so a dry run writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import takewhile
from pathlib import Path
from typing import Protocol, runtime_checkable

from bisector.config import Config
from bisector.errors import GitError, RefError, RollbackError, StoreError
from rollback.configset import ConfigSet


@runtime_checkable
class ConfigSource(Protocol):
    def config_set(self, ref: str) -> ConfigSet:
        """The config files at `ref`, keyed by path under the live folder.

        :raises RefError: `ref` is unsafe or unknown.
        """
        ...


def static_prefix(pattern: str) -> str:
    """The folders before the first wildcard: `configs/**/*.yaml` -> `configs/`."""
    parts = pattern.split("/")
    fixed = list(takewhile(lambda p: not set(p) & set("*?["), parts[:-1]))
    return "".join(p + "/" for p in fixed)


def live_paths(paths: Sequence[str], globs: Sequence[str]) -> dict[str, str]:
    """Repository path -> path under the live folder.

    When every glob shares one fixed folder (`configs/`), it is the live folder itself,
    so `configs/serving.yaml` is served as `serving.yaml`; otherwise paths are kept.
    """
    prefixes = {static_prefix(g) for g in globs}
    strip = prefixes.pop() if len(prefixes) == 1 else ""
    return {p: p[len(strip) :] if strip and p.startswith(strip) else p for p in paths}


def refuse_symlinks(repo: Path, commit: str, paths: Sequence[str], ref: str) -> None:
    """A config file that is a symlink in git (mode 120000) is refused, not rolled back.

    Its blob is the link's text: written as a file, the live folder would hold the path
    `../shared/serving.yaml` instead of a config, and a service would load that.
    """
    from bisector.gitrepo import GitRepo

    with GitRepo(repo) as git:
        links = sorted(set(paths) & git.symlinks(commit))
    if links:
        shown = ", ".join(links[:5]) + (f" and {len(links) - 5} more" if len(links) > 5 else "")
        raise RollbackError(
            f"config files at {ref} are symlinks in git, not files: {shown}; nothing was changed",
            hint="commit the file itself instead of a link, or leave the link out of snapshots.configs",
        )


class GitConfigSource:
    """Config files matching `snapshots.configs`, read from git objects at a ref."""

    def __init__(self, repo: Path, globs: Sequence[str]) -> None:
        self.repo = repo
        self.globs = tuple(globs)

    def config_set(self, ref: str) -> ConfigSet:
        from bisector.gitrepo import GitRepo
        from snapshots.configs import match_globs

        with GitRepo(self.repo) as git:
            commit = git.resolve(ref)  # validates the ref before git sees it
            paths = match_globs(git.list_files(commit.sha), self.globs)
            files = {p: data for p in paths if (data := git.read_file(commit.sha, p)) is not None}
        refuse_symlinks(self.repo, commit.sha, list(files), ref)
        if not files:
            raise RefError(
                f"no config files match {list(self.globs)} at {ref}",
                hint="check snapshots.configs in bisector.yaml",
            )
        mapping = live_paths(list(files), self.globs)
        return ConfigSet(label=f"{ref} ({commit.short})", files={mapping[p]: d for p, d in files.items()})


class SnapshotConfigSource:
    """A snapshot's config files from the verified store (a ref is snapshotted on first use).

    Rolling back to a ref that was never snapshotted takes its snapshot first (from git
    objects), so the files written are always ones the store holds and can verify.
    """

    def __init__(self, repo: Path, config: Config, *, persist: bool = True) -> None:
        self.repo = repo
        self.config = config
        self.persist = persist  # False for --dry-run: read, never write the store

    def config_set(self, ref: str) -> ConfigSet:
        from snapshots import api

        try:
            files = api.config_set(self.repo, self.config, ref)
        except StoreError as exc:
            if "no snapshot of" not in exc.message:
                raise  # tampered or unreadable store: never write what cannot be verified
            if not self.persist:
                return GitConfigSource(self.repo, self.config.snapshots.configs).config_set(ref)
            api.take(self.repo, self.config, [ref])
            files = api.config_set(self.repo, self.config, ref)
        self._refuse_symlinks(ref, files)
        if not files:
            raise RefError(
                f"the snapshot of {ref} holds no config files matching {list(self.config.snapshots.configs)}",
                hint="check snapshots.configs in bisector.yaml",
            )
        mapping = live_paths(sorted(files), self.config.snapshots.configs)
        return ConfigSet(label=ref, files={mapping[p]: files[p] for p in files})

    def _refuse_symlinks(self, ref: str, files: Mapping[str, bytes]) -> None:
        commit = _snapshot_commit(self.repo, self.config, ref)
        if commit is None or not files:
            return
        try:
            refuse_symlinks(self.repo, commit, list(files), ref)
        except GitError:
            return  # the commit left the repository: the snapshot is all there is


def _snapshot_commit(repo: Path, config: Config, ref: str) -> str | None:
    from snapshots import api

    try:
        return api.show(repo, config, ref).commit
    except (StoreError, RefError):
        return None


def resolve_source(repo: Path, config: Config, *, persist: bool = True) -> ConfigSource:
    """The config source for `bisector rollback` and the daemon: the snapshot store."""
    return SnapshotConfigSource(repo, config, persist=persist)
