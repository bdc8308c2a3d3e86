"""Where config sets come from: the `ConfigSource` seam and its git implementation.

`resolve_source` is the one function the CLI and the daemon call; when the snapshot
store grows a `rollback_source(repo, config)` hook it is used, otherwise config files are
read straight from git objects (never from the working tree) with plain `git`
subprocesses, which keeps the emergency path free of heavier imports.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from itertools import takewhile
from pathlib import Path
from typing import Protocol, runtime_checkable

from bisector.config import Config
from bisector.errors import GitError, RefError, StoreError
from rollback.configset import ConfigSet

# Same rule as bisector.gitrepo.validate_ref, without importing GitPython (start-up time).
_SAFE_REF = re.compile(r"^[A-Za-z0-9._/@{}^~+:-]+$")


@runtime_checkable
class ConfigSource(Protocol):
    def config_set(self, ref: str) -> ConfigSet:
        """The config files at `ref`, keyed by path under the live folder.

        :raises RefError: `ref` is unsafe or unknown.
        """
        ...


def check_ref(ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise RefError(
            f"invalid ref {ref!r}: a ref cannot start with '-'",
            hint="pass a tag, branch, commit or snapshot id, e.g. --to v2.3.1",
        )
    if not _SAFE_REF.match(ref) or ".." in ref or len(ref) > 255:
        raise RefError(f"invalid ref {ref!r}", hint="pass a tag, branch, commit or snapshot id")
    return ref


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`configs/**/*.yaml` style globs: `**/` spans folders (also none), `*` stays in one."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:[^/]+/)*", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


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
        self._patterns = [glob_regex(g) for g in self.globs]

    def _git(self, *args: str, stdin: bytes | None = None) -> bytes:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repo), *args],
                input=stdin,
                capture_output=True,
                check=False,
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}", hint="install git") from exc
        if done.returncode != 0:
            raise GitError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout

    def config_set(self, ref: str) -> ConfigSet:
        check_ref(ref)
        try:
            sha = self._git(
                "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
            ).decode().strip()
        except GitError as exc:
            raise RefError(
                f"unknown ref {ref!r}: it does not name a commit in {self.repo}",
                hint="list tags with `git tag`, or pass a commit id",
            ) from exc
        listing = self._git("ls-tree", "-r", "-z", "--name-only", "--end-of-options", sha)
        paths = [
            p
            for p in (raw.decode("utf-8", "surrogateescape") for raw in listing.split(b"\0") if raw)
            if any(rx.match(p) for rx in self._patterns)
        ]
        if not paths:
            raise RefError(
                f"no config files match {list(self.globs)} at {ref}",
                hint="check snapshots.configs in bisector.yaml",
            )
        files = dict(zip(paths, self._blobs(sha, paths), strict=True))
        mapping = live_paths(paths, self.globs)
        return ConfigSet(label=f"{ref} ({sha[:10]})", files={mapping[p]: files[p] for p in paths})

    def _blobs(self, sha: str, paths: Sequence[str]) -> list[bytes]:
        # One `git cat-file --batch` for all files instead of one process per file.
        request = "".join(f"{sha}:{p}\n" for p in paths).encode("utf-8", "surrogateescape")
        out = self._git("cat-file", "--batch", stdin=request)
        blobs: list[bytes] = []
        pos = 0
        for path in paths:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            if len(header) != 3 or header[1] != b"blob":
                raise GitError(f"cannot read {path} at {sha[:10]}")
            size = int(header[2])
            blobs.append(out[header_end + 1 : header_end + 1 + size])
            pos = header_end + 1 + size + 1  # the blob is followed by a newline
        return blobs


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
