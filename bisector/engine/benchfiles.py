"""The benchmark's own files must be in every commit it measures.

Each commit is measured in its own checkout of that commit (a git worktree, or a
container holding or mounting one), and `benchmark.command` runs there. A script the
command names by a relative path (`python bisector_bench.py`, `bench/run.py`), or a
module it names (`-m bench`, the harness's `--factory bench:build`), is found in that
checkout only when the commit has it: an untracked script, or one committed after the
good endpoint, makes the good endpoint fail after its trials, with a log that says
"can't open file". So it is checked at both endpoints before anything is measured or
written. Only what exists in the working tree is checked (so an argument that is not a
file here, an absolute path, an option and an output option's value are left alone).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bisector.core.types import Commit
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo

__all__ = [
    "BenchFile",
    "benchmark_files",
    "check_benchmark_files",
    "endpoint_label",
    "missing_files",
    "uncommitted_warnings",
]

# Options whose value names a module, not a path: `python -m MOD`, `--factory MOD:FN`.
MODULE_OPTIONS = frozenset({"-m", "--factory"})
# Options whose value is something the benchmark writes (`-o out.json`, `--json-output
# F`, `--log F`): an old result in the working tree is no input. Broad on purpose: a file
# left unchecked only fails later, a file wrongly required refuses a run that works.
_OUTPUT = re.compile(r"^(-o|--[\w-]*(out|save|log|write|dump|result|report)[\w-]*)$", re.IGNORECASE)
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

FILE_HINT = (
    "commit it (then bisect from a commit that has it), or keep it outside the repository "
    "and name it by its absolute path in benchmark.command"
)
MODULE_HINT = (
    "commit it (then bisect from a commit that has it), or keep it outside the repository "
    "and put its folder on PYTHONPATH in benchmark.env"
)


@dataclass(frozen=True)
class BenchFile:
    """A file of the working tree the benchmark needs in each checkout."""

    path: str  # relative to the repository root, with `/`
    module: bool = False  # named as a module (moved out through PYTHONPATH, not a path)


def _relative(root: Path, arg: str) -> str | None:
    """`arg` as a path inside the repository, when it names a file of the working tree."""
    if not arg or arg.startswith(("/", "~")) or "\0" in arg:
        return None
    rel = posixpath.normpath(arg.replace("\\", "/"))
    if rel == ".." or rel.startswith("../") or rel.split("/")[0] == ".git":
        return None
    try:
        return rel if (root / rel).is_file() else None
    except OSError:  # a name too long, a folder we may not read
        return None


def _module(root: Path, name: str, main: bool) -> str | None:
    """The working tree's file of module `name` (a package's `__main__` for `-m`)."""
    if not _MODULE.match(name):
        return None
    base = name.replace(".", "/")
    inits = ["__main__.py", "__init__.py"] if main else ["__init__.py"]
    for rel in [f"{base}.py", *(f"{base}/{init}" for init in inits)]:
        if (root / rel).is_file():
            return rel
    return None


def benchmark_files(root: Path, command: Sequence[str]) -> list[BenchFile]:
    """The files of the working tree at `root` that `command` names, in order, once each."""
    found: dict[str, BenchFile] = {}
    option: str | None = None  # the option the previous argument was
    for arg in command:
        value, after = arg, option
        option = None
        if arg.startswith("-"):
            name, eq, rest = arg.partition("=")
            if not eq:
                option = arg
                continue
            value, after = rest, name
        if after == "-c" or (after is not None and _OUTPUT.match(after)):
            continue  # `python -c CODE`, or an output
        if after in MODULE_OPTIONS:
            rel = _module(root, value.partition(":")[0], main=after == "-m")
            if rel is not None:
                found.setdefault(rel, BenchFile(rel, module=True))
            continue
        rel = _relative(root, value)
        if rel is not None:
            found.setdefault(rel, BenchFile(rel))
    return list(found.values())


def endpoint_label(kind: str, ref: str, commit: Commit) -> str:
    """`the good endpoint v1.2 (abc1234)`: the ref as the user wrote it and its commit."""
    if ref.lower() == commit.sha[: len(ref)].lower():  # a commit id: said once
        return f"the {kind} endpoint {commit.short}"
    return f"the {kind} endpoint {ref} ({commit.short})"


def missing_files(git: GitRepo, files: Sequence[BenchFile], commit: Commit) -> list[BenchFile]:
    """Those of `files` that `commit`'s tree lacks."""
    tree = set(git.list_files(commit.sha))
    return [file for file in files if file.path not in tree]


def check_benchmark_files(
    git: GitRepo, command: Sequence[str], endpoints: Sequence[tuple[str, Commit]]
) -> None:
    """Every file of the working tree that `command` names is in each endpoint's tree.

    `endpoints`: each commit with how messages name it (`endpoint_label`), in the order
    they are checked.

    :raises BisectorError: the first file missing at the first endpoint that lacks one.
    """
    files = benchmark_files(git.root, command)
    if not files:
        return
    for label, commit in endpoints:
        for file in missing_files(git, files, commit):
            raise BisectorError(
                f"the benchmark's {file.path} is not in {label}: "
                "each commit is measured in its own checkout, which lacks it",
                hint=MODULE_HINT if file.module else FILE_HINT,
            )


def uncommitted_warnings(git: GitRepo, command: Sequence[str]) -> list[str]:
    """`config check`: the files `command` names that HEAD lacks (none without a HEAD)."""
    files = benchmark_files(git.root, command)
    if not files:
        return []
    head = git.resolve("HEAD")
    return [
        f"the benchmark's {file.path} is not committed (HEAD {head.short} lacks it): each "
        "commit is measured in its own checkout, so `bisector run` refuses endpoints "
        f"without it; {MODULE_HINT if file.module else FILE_HINT}"
        for file in missing_files(git, files, head)
    ]
