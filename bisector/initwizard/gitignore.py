"""The store's line in the repository's `.gitignore` (`bisector init`).

The store (`snapshots.store`, `.bisector` by default) lives in the repository: runs
write their journal, snapshots and reports there, and none of it belongs in a commit.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

__all__ = ["GITIGNORE", "ignore_line", "with_store_ignored"]

GITIGNORE = ".gitignore"


def ignore_line(store: str) -> str | None:
    """The `.gitignore` line for the store folder, or None when it is outside the repository."""
    rel = PurePosixPath(store.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or str(rel) in ("", "."):
        return None
    name = rel.as_posix()
    return f"{name}/" if len(rel.parts) == 1 else f"/{name}/"


def _ignores(text: str, line: str) -> bool:
    bare = line.strip("/")
    return any(
        entry.strip().rstrip("/").removeprefix("/") == bare
        or entry.strip() in (f"**/{bare}", f"**/{bare}/")
        for entry in text.splitlines()
    )


def with_store_ignored(root: Path, store: str) -> tuple[str, str] | None:
    """The new `.gitignore` text at `root` with the store's line added (existing content
    kept) and the line, or None when it already lists the store (or it is outside)."""
    line = ignore_line(store)
    if line is None:
        return None
    path = root / GITIGNORE
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return None  # not a file init should replace
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape") if path.exists() else ""
    except OSError:
        return None
    if _ignores(text, line):
        return None
    sep = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{sep}{line}\n", line
