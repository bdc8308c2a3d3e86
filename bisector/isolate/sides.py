"""The two sides of a standalone isolation (`deps`, `config --good/--bad`): the files given
on the command line, and the path in the checkout they stand for."""

from __future__ import annotations

from pathlib import Path

from bisector.config import load_config
from bisector.errors import ConfigError
from bisector.gitrepo import GitRepo
from snapshots.configs import match_globs


def checkout_path(path: str) -> str:
    """A path a standalone isolation may write in a checkout: relative, without `..`.

    The two sides are written into temporary checkouts at this path; an absolute path or
    a `..` would write (and leave) a file anywhere else on the machine.
    """
    parts = path.replace("\\", "/").split("/")
    if (
        not path.strip()
        or "\0" in path
        or path.startswith("/")
        or ".." in parts
        or all(p in ("", ".") for p in parts)
    ):
        raise ConfigError(
            f"{path!r} is not a path inside the repository; nothing was written",
            hint="give the file's path relative to the repository root, e.g. --target configs/serving.yaml",
        )
    return path


def read_side(path: Path) -> bytes:
    """The contents of a `--good` / `--bad` file given on the command line."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def config_target(repo: Path, config: Path | None, bad: Path, target: str | None) -> str:
    """The repo path of the config file `--good/--bad` stand for.

    `target` when given; else `bad`'s own path when it lies inside the repository; else
    the one file of HEAD's `snapshots.configs` with `bad`'s name. The first two must be
    files of HEAD: the benchmark runs HEAD's code, which reads no file HEAD lacks, so both
    sides measured alike and the run said "not reproduced" (exit 3).
    """
    root = repo.resolve()
    if target is not None:
        return _at_head(root, checkout_path(target), "--target")
    if bad.resolve().is_relative_to(root):
        return _at_head(root, bad.resolve().relative_to(root).as_posix(), "--bad")
    cfg = load_config(root, config)
    with GitRepo(root) as git:
        files = match_globs(git.list_files(git.resolve("HEAD").sha), cfg.snapshots.configs)
    same = [f for f in files if f.rsplit("/", 1)[-1] == bad.name]
    if len(same) != 1:
        raise ConfigError(
            f"cannot tell which config file {bad.name} stands for", hint="pass --target PATH"
        )
    return same[0]


def _at_head(root: Path, path: str, option: str) -> str:
    """`path` when HEAD has it (see `config_target`)."""
    with GitRepo(root) as git:
        head = git.resolve("HEAD")
        if path in git.list_files(head.sha):
            return path
    raise ConfigError(
        f"{option} stands for {path}, which HEAD ({head.short}) does not have: its code "
        "reads no such file, so both sides would measure alike",
        hint="pass --target with the config file the benchmark reads at HEAD, e.g. "
        "--target configs/serving.yaml",
    )
