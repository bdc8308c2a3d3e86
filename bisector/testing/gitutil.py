"""Real git repositories for tests, the demo and the benchmarks: one fixed author per
repository and increasing, deterministic dates.

    repo = make_repo(tmp_path / "repo")
    sha = commit(repo, {"configs/a.yaml": "x: 1\\n", "old.txt": None}, "msg", tag="v1")

Every git call in a repository is dated one hour after the one before it, the first one
hour after the repository's start (default 2024-01-01T00:00:00Z), so the same calls give
the same commit ids on every machine. The clock and the author live in the repository
(`.git/test-clock`): whoever runs git there later (a test publishing a release) continues
them, so a later tag is also a newer one (`for-each-ref --sort=creatordate`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["commit", "commit_all", "git", "make_repo", "merge", "run", "tag"]

AUTHOR_NAME = "Test Author"
AUTHOR_EMAIL = "test@example.org"
EPOCH = 1704067200  # 2024-01-01T00:00:00Z
_STEP = 3600
_CLOCK = "test-clock"


def _tick(repo: Path) -> tuple[int, tuple[str, str]]:
    """The date of `repo`'s next git call, and its author; advances the clock."""
    path = repo / ".git" / _CLOCK
    state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    date = int(state.get("last", EPOCH)) + _STEP
    name, email = state.get("author", (AUTHOR_NAME, AUTHOR_EMAIL))
    if path.parent.is_dir():  # not before `init`, nor in a linked worktree (.git is a file)
        path.write_text(json.dumps({"last": date, "author": [name, email]}), encoding="utf-8")
    return date, (str(name), str(email))


def run(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git in `repo` as its author at its next date; the whole outcome.

    `env`: set on top (e.g. for the script of `git bisect run`). `check=False`: a failing
    git is returned, not raised.
    """
    repo = Path(repo)
    date, (name, email) = _tick(repo)
    stamp = f"@{date} +0000"
    full_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        # The user's own git configuration (signing, hooks, templates) stays out.
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        **(env or {}),
    }
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=repo,
        env=full_env,
        check=check,
        capture_output=True,
        text=True,
    )


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run git in `repo` as its author at its next date; its stdout, stripped.

    :raises subprocess.CalledProcessError: git failed.
    """
    return run(repo, *args, env=env).stdout.strip()


def make_repo(
    path: Path,
    branch: str = "main",
    *,
    author: tuple[str, str] = (AUTHOR_NAME, AUTHOR_EMAIL),
    start: int = EPOCH,
) -> Path:
    """An empty repository at `path` on `branch`, whose commits are by `author` and
    dated from `start` (unix seconds) on."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True, capture_output=True)
    (path / ".git" / _CLOCK).write_text(
        json.dumps({"last": start, "author": list(author)}), encoding="utf-8"
    )
    git(path, "config", "user.name", author[0])
    git(path, "config", "user.email", author[1])
    git(path, "config", "commit.gpgsign", "false")
    git(path, "config", "tag.gpgsign", "false")
    return path


def tag(repo: Path, name: str, ref: str = "HEAD", *, message: str | None = None) -> None:
    """Tag `ref` as `name`: annotated with `message`, lightweight without."""
    if message is None:
        git(repo, "tag", name, ref)
    else:
        git(repo, "tag", "-a", name, "-m", message, ref)


def _finish(repo: Path, name: str | None, annotated: bool) -> str:
    if name is not None:
        tag(repo, name, message=f"release {name}" if annotated else None)
    return git(repo, "rev-parse", "HEAD")


def commit(
    repo: Path,
    files: Mapping[str, str | bytes | None],
    msg: str,
    tag: str | None = None,
    *,
    annotated: bool = False,
) -> str:
    """Write (str/bytes) or delete (None) files, commit them all, optionally tag; the sha."""
    for rel, content in files.items():
        path = Path(repo) / rel
        if content is None:
            git(repo, "rm", "-q", "--", rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        git(repo, "add", "--", rel)
    git(repo, "commit", "-q", "--allow-empty", "-m", msg)
    return _finish(repo, tag, annotated)


def commit_all(repo: Path, msg: str, tag: str | None = None, *, annotated: bool = False) -> str:
    """Commit every change in the work tree (`add -A`), optionally tag; the sha."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", msg)
    return _finish(repo, tag, annotated)


def merge(repo: Path, branch: str, msg: str, tag: str | None = None) -> str:
    """Merge `branch` into the current branch with a merge commit; the sha."""
    git(repo, "merge", "-q", "--no-ff", "-m", msg, branch)
    return _finish(repo, tag, False)
