"""Isolation on HEAD's code: `bisector deps`, and the `bisector config` group
(`--good FILE --bad FILE`, `isolate`, `schema`, `check`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from bisector.cli._common import ConfigOpt, JsonOpt, RepoOpt, emit_json, stderr_console

GoodOpt = Annotated[Path | None, typer.Option("--good", help="Good config file.")]
BadOpt = Annotated[Path | None, typer.Option("--bad", help="Bad config file.")]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="Repo path of the config file they stand for.",
        show_default="matched by name",
    ),
]


def deps(
    good_lock: Annotated[Path, typer.Option("--good-lock", help="Good dependency file.")],
    bad_lock: Annotated[Path, typer.Option("--bad-lock", help="Bad dependency file.")],
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Same code (HEAD), two dependency sets: which package change regressed."""
    from bisector.cli.progress import ConsoleProgress
    from bisector.isolate.run import isolate_deps

    _check_deps_side("--good-lock", good_lock, repo, config)
    _check_deps_side("--bad-lock", bad_lock, repo, config)
    console = stderr_console()
    with _unmeasurable_side(f"--good-lock {good_lock}", f"--bad-lock {bad_lock}"):
        doc = isolate_deps(
            repo=repo,
            config=config,
            good_lock=good_lock,
            bad_lock=bad_lock,
            progress=ConsoleProgress(console),
        )
    return _render_isolation(console, doc, "deps", json_out)


@contextmanager
def _unmeasurable_side(good: str, bad: str) -> Iterator[None]:
    """A side that cannot be built or measured is the user's input, not a bug: exit 2, not 1.
    `good` / `bad`: the options that gave the two sides, to name the one that failed."""
    from bisector.errors import BisectorError
    from bisector.isolate.changes import PartialStateError
    from bisector.isolate.states import SideUnmeasurable

    try:
        yield
    except SideUnmeasurable as exc:
        option = good if exc.side == "good" else bad
        raise BisectorError(
            f"isolation stopped: the {exc.side} side ({option}) could not be measured: {exc.why}",
            hint=f"see {exc.logs}; once the cause is fixed (the file, or what it needs "
            "installed), the same command measures both sides again",
        ) from exc
    except PartialStateError as exc:
        raise BisectorError(
            f"isolation stopped: {exc}",
            hint=f"the benchmark fails with the {good} or {bad} file in place; see the trial logs in the store",
        ) from exc


def _check_config_side(option: str, path: Path, name: str) -> None:
    """A `--good`/`--bad` file standing for a YAML or JSON config (`name`) must be a mapping."""
    from bisector.errors import ConfigError
    from snapshots.configs import is_structured, parse_config_bytes

    if not is_structured(name):
        return
    data = _side_bytes(option, path)
    doc, problem = parse_config_bytes(name, data)
    if problem is not None or not isinstance(doc, dict):
        # YAML reads an empty file as null: say "empty", not "a NoneType".
        what = problem or ("it is empty" if doc is None else f"a {_KINDS.get(type(doc), 'value')}")
        raise ConfigError(
            f"{option} {path}: not a YAML/JSON mapping ({what})",
            hint="pass two versions of one config file",
        )


def _side_bytes(option: str, path: Path) -> bytes:
    """The file a `--good`/`--bad` option names; unreadable: a ConfigError naming both."""
    from bisector.errors import ConfigError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot read it: {exc.strerror or exc}") from exc


_KINDS = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


def _check_deps_side(option: str, path: Path, repo: Path, config: Path | None) -> None:
    """A `--good-lock`/`--bad-lock` file must read as the dependency file it stands for
    (`environment.requirements[0]`): a requirements file given for a pyproject.toml was
    read as no packages at all, and the two sides "did not differ"."""
    from bisector.config import load_config
    from bisector.errors import ConfigError
    from snapshots.deps import read_declared

    requirements = load_config(repo.resolve(), config, warn=False).environment.requirements
    if not requirements:
        return  # refused with its own message by `isolate_deps`
    target = requirements[0]
    data = _side_bytes(option, path)
    found = read_declared(lambda p: data if p == target else None, [target])
    unparsed = [n for n in found.notes if "cannot parse" in n]
    whole = [n for n in found.notes if n.startswith(f"{target}: ") and n not in unparsed]
    if whole or (unparsed and not found.dependencies):  # not TOML / UTF-8, or no package
        note = (whole or unparsed)[0].removeprefix(target).removesuffix(", skipped")
        line = re.match(r":(\d+): ", note)
        problem = f"line {line[1]}: {note[line.end() :]}" if line else note.lstrip(":").strip()
        raise ConfigError(
            f"{option} {path}: does not read as {target}, the dependency file it stands for"
            f" ({problem})",
            hint=f"pass two versions of {target} (the first file of environment.requirements)",
        )


def _render_isolation(console: Any, doc: dict[str, Any], what: str, json_out: bool) -> int:
    if json_out:
        emit_json(doc)
    culprit = doc.get("culprit")
    if culprit is None:
        console.print(f"not reproduced: the two {what} sides do not differ significantly")
        return 3
    for dep in culprit["dependencies"]:
        first = f" (first bad {dep['first_bad_version']})" if dep.get("first_bad_version") else ""
        mark = "" if dep.get("verified") else " [unverified]"
        console.print(f"culprit package: {dep['name']} {dep['from']} -> {dep['to']}{first}{mark}")
    for key in culprit["config_keys"]:
        console.print(f"culprit config key: {key}")
    return 0


def _isolate_config(
    repo: Path, config: Path | None, good: Path, bad: Path, target: str | None, json_out: bool
) -> int:
    from bisector.cli.progress import ConsoleProgress
    from bisector.isolate.run import isolate_config

    _check_config_side("--good", good, target or bad.name)
    _check_config_side("--bad", bad, target or bad.name)
    console = stderr_console()
    with _unmeasurable_side(f"--good {good}", f"--bad {bad}"):
        doc = isolate_config(
            repo=repo,
            config=config,
            good=good,
            bad=bad,
            target=target,
            progress=ConsoleProgress(console),
        )
    return _render_isolation(console, doc, "config", json_out)


def config_group(
    ctx: typer.Context,
    good: GoodOpt = None,
    bad: BadOpt = None,
    target: TargetOpt = None,
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """With --good FILE --bad FILE: same code (HEAD), two config files: which key regressed."""
    if ctx.invoked_subcommand is not None:
        return 0
    if good is None or bad is None:
        from bisector.errors import ConfigError

        raise ConfigError(
            "config isolation needs both --good FILE and --bad FILE",
            hint="or use `bisector config schema` / `bisector config check`",
        )
    return _isolate_config(repo, config, good, bad, target, json_out)


def config_isolate(
    good: Annotated[Path, typer.Option("--good", help="Good config file.")],
    bad: Annotated[Path, typer.Option("--bad", help="Bad config file.")],
    target: TargetOpt = None,
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Same as `bisector config --good FILE --bad FILE`."""
    return _isolate_config(repo, config, good, bad, target, json_out)


def config_schema() -> int:
    """Print the JSON schema of bisector.yaml (for editors)."""
    from bisector.config import json_schema

    emit_json(json_schema())
    return 0


def config_check(repo: RepoOpt = Path("."), config: ConfigOpt = None) -> int:
    """Validate bisector.yaml (and that HEAD has the files the benchmark names)."""
    from bisector.config import find_config, load_config
    from bisector.engine.benchfiles import uncommitted_warnings
    from bisector.errors import GitError
    from bisector.gitrepo import GitRepo
    from rollback.entry import resolve_target

    cfg = load_config(repo, config, warn=False)
    # A target no rollback may write (the repository, the store, a file) is refused here,
    # not first in an emergency `rollback` or after a whole `run --rollback`.
    resolve_target(repo, cfg, None)
    console = stderr_console()
    warnings = list(cfg.warnings())
    try:
        with GitRepo(repo.resolve()) as git:
            warnings += uncommitted_warnings(git, cfg.benchmark.command)
    except GitError:  # not a repository, or no commit yet: the YAML alone is checked
        pass
    for warning in warnings:
        console.print(f"warning: {warning}")
    console.print(f"{find_config(repo, config)}: ok")
    return 0
