"""Where config sets come from: the `ConfigSource` seam and its two implementations.

`resolve_source` is the one function the CLI and the daemon call: it reads a snapshot's
files from the verified store (`SnapshotConfigSource`). `GitConfigSource` reads the same
files straight from git objects, never the working tree; a dry run uses it for a ref not
snapshotted yet, so a dry run writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import takewhile
from pathlib import Path
from typing import Protocol, runtime_checkable

from bisector.config import Config
from bisector.errors import RefError, StoreError
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
        if not files:
            raise RefError(
                f"the snapshot of {ref} holds no config files matching {list(self.config.snapshots.configs)}",
                hint="check snapshots.configs in bisector.yaml",
            )
        mapping = live_paths(sorted(files), self.config.snapshots.configs)
        return ConfigSet(label=ref, files={mapping[p]: files[p] for p in files})


def resolve_source(repo: Path, config: Config, *, persist: bool = True) -> ConfigSource:
    """The config source for `bisector rollback` and the daemon: the snapshot store."""
    return SnapshotConfigSource(repo, config, persist=persist)
