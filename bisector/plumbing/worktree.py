"""Which git work tree a folder lies in, for the errors of a command run from a subfolder.

Every command works on `--repo` (default: the current folder), which must be the work
tree's root: at 3 a.m. `cd configs && bisector rollback ...` must not be told that there
is no git repository or that a `bisector.yaml` should be created.
"""

from __future__ import annotations

from pathlib import Path

import git
from git.exc import InvalidGitRepositoryError, NoSuchPathError

__all__ = ["bare_error", "is_bare_repository", "subfolder_hint", "worktree_above"]


def worktree_above(folder: Path) -> Path | None:
    """The root of the git work tree `folder` lies inside, when `folder` is not that root
    itself; None for a root or a folder in no repository (a bare one counts as none)."""
    here = folder.resolve()
    if (here / ".git").exists():
        return None
    return next((p for p in here.parents if (p / ".git").exists()), None)


def subfolder_hint(folder: Path) -> str | None:
    """`hint:` text pointing from a subfolder of a work tree to its root; None if not one."""
    top = worktree_above(folder)
    if top is None:
        return None
    return f"{folder.resolve()} is a folder inside the git repository {top}: run bisector from {top}, or pass --repo {top}"


def is_bare_repository(folder: Path) -> bool:
    """Whether `folder` is a bare repository: git's own files, no working tree. bisector
    would write its config, `.gitignore` and store among them."""
    if (folder / ".git").exists() or not (folder / "HEAD").is_file():
        return False  # the common case, a checkout, without opening anything
    try:
        with git.Repo(folder, search_parent_directories=False) as repo:
            return bool(repo.bare)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return False


def bare_error(folder: Path) -> tuple[str, str]:
    """The `error:` and `hint:` of every command given a bare repository as `--repo`."""
    return (
        f"{folder} is a bare repository (no working tree)",
        f"clone it (git clone {folder} DIR) and run bisector in the checkout, or pass "
        "--repo PATH of a checkout",
    )
