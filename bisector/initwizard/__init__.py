"""`bisector init`: a commented `bisector.yaml` (and a benchmark template) for a repository.

It looks at what is tracked at HEAD (`detect`), renders the config (`render`) and writes
it with the template `--bench` asked for, and the store's line in `.gitignore`. It never
overwrites a file without `force`, and checks everything before writing anything, so a
refusal changes nothing on disk.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bisector.config import parse_config
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.initwizard.detect import Detected, detect
from bisector.initwizard.gitignore import GITIGNORE, with_store_ignored
from bisector.initwizard.render import BenchKind, render_config
from bisector.initwizard.templates import (
    HARNESS_FACTORY,
    HARNESS_FACTORY_FILE,
    PYTHON_BENCH,
    PYTHON_BENCH_FILE,
)
from bisector.plumbing.atomic import atomic_write_bytes, probe_writable

__all__ = ["BenchKind", "Detected", "InitResult", "init_repository"]


@dataclass(frozen=True)
class InitResult:
    detected: Detected
    written: tuple[Path, ...]  # in the order written; the config last
    template: Path | None = None  # the benchmark template: to be committed before a run
    ignored: tuple[Path, str] | None = None  # the .gitignore and the line added to it


def _template(bench: BenchKind | None) -> tuple[str, str] | None:
    if bench == "python":
        return PYTHON_BENCH_FILE, PYTHON_BENCH
    if bench == "harness":
        return HARNESS_FACTORY_FILE, HARNESS_FACTORY
    return None


def _check_writable(folder: Path) -> None:
    try:
        probe_writable(folder)
    except OSError as exc:
        raise BisectorError(
            f"cannot write in {folder}: {exc.strerror or exc}",
            hint="run `bisector init` in a repository you can write to, or pass --config FILE",
        ) from exc


def _check_not_in_the_way(path: Path) -> None:
    """A destination that is a folder (or a device, a socket, ...) is never replaced, even
    with --force: refused before anything is written."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BisectorError(f"cannot check {path}: {exc.strerror or exc}") from exc
    if path.is_dir() or not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        what = "a folder" if path.is_dir() else "something other than a file"
        raise BisectorError(
            f"{path} is {what}; not writing it (nothing was written)",
            hint="move it out of the way, or pass --config FILE to write the config elsewhere",
        )


def _shown(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        return f"{path} (a symlink to {os.readlink(path)}, which does not exist)"
    return str(path)


def init_repository(
    repo: Path, *, config: Path | None = None, bench: BenchKind | None = None, force: bool = False
) -> InitResult:
    """Write `bisector.yaml` (at `config`, default the repository root) and the template.

    :raises GitError: `repo` is not a git repository.
    :raises BisectorError: a file exists and `force` is off; a folder cannot be written.
    """
    with GitRepo(repo) as git:
        root = git.root
        found = detect(git)
    config_path = config if config is not None else root / "bisector.yaml"
    files: list[tuple[Path, str]] = []
    template = _template(bench)
    if template is not None:
        files.append((root / template[0], template[1]))
    text = render_config(found, bench)
    cfg = parse_config(text, str(config_path))  # a bug must not leave an invalid file behind
    files.append((config_path, text))
    for path, _ in files:
        _check_not_in_the_way(path)
    # lexists: a dangling symlink exists too (writing would silently replace the link)
    existing = [path for path, _ in files if os.path.lexists(path)]
    ignore = with_store_ignored(root, cfg.snapshots.store)  # kept: existing lines, once
    if existing and not force:
        names = ", ".join(_shown(p) for p in existing)
        raise BisectorError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; not overwriting",
            hint="pass --force to replace it (your edits would be lost), or edit it by hand",
        )
    if ignore is not None:
        files.insert(-1, (root / GITIGNORE, ignore[0]))  # the config is still written last
    for folder in dict.fromkeys(path.parent for path, _ in files):
        if not folder.is_dir():
            raise BisectorError(
                f"no such folder: {folder}", hint="create it, or pass another --config"
            )
        _check_writable(folder)
    for path, content in files:
        try:
            atomic_write_bytes(path, content.encode("utf-8", "surrogateescape"))
        except OSError as exc:  # named by its destination, not the temporary file
            raise BisectorError(f"cannot write {path}: {exc.strerror or exc}") from exc
    gitignore = root / GITIGNORE
    return InitResult(
        found,
        tuple(path for path, _ in files if path != gitignore),
        template=None if template is None else root / template[0],
        ignored=None if ignore is None else (gitignore, ignore[1]),
    )
