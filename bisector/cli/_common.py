"""What every command module shares: option types, the JSON writer, the stderr console,
and the global flags."""

from __future__ import annotations

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


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)
