"""Which git work tree a folder lies in, for the errors of a command run from a subfolder.

Every command works on `--repo` (default: the current folder), which must be the work
tree's root: at 3 a.m. `cd configs && bisector rollback ...` must not be told that there
is no git repository or that a `bisector.yaml` should be created.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["subfolder_hint", "worktree_above"]


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
