"""Real git repositories for tests: a fixed author and increasing, deterministic dates.

    repo = make_repo(tmp_path / "repo")
    sha = commit(repo, {"configs/a.yaml": "x: 1\\n", "old.txt": None}, "msg", tag="v1")

The n-th commit (or annotated tag) of a repository is dated 2024-01-01 + n hours, so
the same calls give the same commit ids on every machine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["commit", "git", "make_repo", "merge"]

AUTHOR_NAME = "Test Author"
AUTHOR_EMAIL = "test@example.org"
_EPOCH = 1704067200  # 2024-01-01T00:00:00Z


def _counter(repo: Path) -> int:
    path = Path(repo) / ".git" / "test-clock"
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity and the repository's next date."""
    date = f"@{_EPOCH + 3600 * _counter(repo)} +0000"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo),  # keep the user's ~/.gitconfig out
    }
    out = subprocess.run(  # noqa: S603 - fixed argv, test helper
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def make_repo(path: Path, branch: str = "main") -> Path:
    """An empty repository at `path` on `branch`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True)  # noqa: S603, S607
    git(path, "config", "user.name", AUTHOR_NAME)
    git(path, "config", "user.email", AUTHOR_EMAIL)
    git(path, "config", "commit.gpgsign", "false")
    git(path, "config", "tag.gpgsign", "false")
    return path


def commit(
    repo: Path,
    files: dict[str, str | bytes | None],
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
    if tag is not None:
        if annotated:
            git(repo, "tag", "-a", tag, "-m", f"release {tag}")
        else:
            git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD")


def merge(repo: Path, branch: str, msg: str, tag: str | None = None) -> str:
    """Merge `branch` into the current branch with a merge commit; the sha."""
    git(repo, "merge", "-q", "--no-ff", "-m", msg, branch)
    if tag is not None:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD")
