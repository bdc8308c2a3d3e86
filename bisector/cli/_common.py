"""What every command module shares: option types, the JSON writer, the stderr console,
and the global flags."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

RepoOpt = Annotated[
    Path, typer.Option("--repo", help="Repository to work on.", show_default="current folder")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="bisector.yaml to use.", show_default="<repo>/bisector.yaml"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]

# Set by the app's callback (`--debug`); read by `main()` and the daemon command.
state: dict[str, bool] = {"debug": False}


def emit_json(doc: Any) -> None:
    """The one place that writes JSON documents to stdout."""
    import json

    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def ensure_writable_dir(path: Path, what: str) -> None:
    """Create `path` if needed and prove a file can be made in it, before any work.

    A report folder that cannot be written used to fail only after the whole bisection.
    """
    from bisector.errors import BisectorError
    from bisector.plumbing.atomic import probe_writable

    try:
        probe_writable(path, create=True)
    except OSError as exc:
        raise BisectorError(
            f"{what} {path} cannot be written: {exc.strerror or exc}",
            hint="pick a folder you can write to",
        ) from exc


BUILDER_NAMES = ("local", "venv", "docker")


def check_builder(builder: str | None) -> None:
    """Refuse a `--builder` this tool has no builder for (exit 2), before anything else."""
    if builder is not None and builder not in BUILDER_NAMES:
        from bisector.errors import ConfigError

        raise ConfigError(f"unknown builder {builder!r}", hint="use local, venv or docker")


def stderr_console() -> Any:
    """The console every command prints to (stderr).

    Markup and emoji codes off: what it prints quotes commit subjects, config keys and
    package names (`fix [/] race`, `[link=...]`, `torch[cuda]`, `:fire:`), which must
    come out literally, not be read as Rich markup (a stray `[/]` raised MarkupError
    after the culprit was found). Styles come from `Text` and table styles instead.

    Lines are never wrapped by the console (`soft_wrap`): output that is not a terminal
    (a pipe, a CI log) used to be cut at 80 columns, splitting a report's path in two. A
    terminal wraps long lines itself. Tables, laid out to a width, get a wide one there.
    """
    from rich.console import Console

    console = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = NOT_A_TERMINAL_WIDTH
    return console


NOT_A_TERMINAL_WIDTH = 240  # tables' width when stderr is a pipe or a file
