"""`bisector init`: write a commented bisector.yaml (and a benchmark template)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bisector.cli._common import RepoOpt, stderr_console


def init(
    bench: Annotated[
        str | None,
        typer.Option(
            "--bench",
            help="Also write a benchmark template: python (bisector_bench.py) or harness "
            "(bisector_factory.py for `python -m bisector.bench`).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite bisector.yaml and the template.")
    ] = False,
    repo: RepoOpt = Path("."),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Where to write the config.", show_default="<repo>/bisector.yaml"
        ),
    ] = None,
) -> int:
    """Write a commented bisector.yaml for this repository (dependency files, config
    folders and release tags found at HEAD)."""
    from bisector.errors import BisectorError
    from bisector.initwizard import BenchKind, init_repository

    kind: BenchKind | None = None
    if bench == "python":
        kind = "python"
    elif bench == "harness":
        kind = "harness"
    elif bench is not None:
        raise BisectorError(f"unknown --bench {bench!r}", hint="use python or harness")
    result = init_repository(
        repo.resolve(),
        config=None if config is None else config.resolve(),
        bench=kind,
        force=force,
    )
    console = stderr_console()
    found = result.detected
    for path in result.written:
        console.print(f"wrote {path}")
    # what was found, under the `wrote .../bisector.yaml` line it explains
    console.print(
        f"  dependency files: {', '.join(found.dependency_files) or 'none'}; "
        f"config globs: {', '.join(found.config_globs) or 'none'}; "
        f"release tags: {len(found.release_tags)}"
    )
    if result.ignored is not None:
        gitignore, line = result.ignored
        console.print(f"added {line} (the store) to {gitignore}")
    tags = found.release_tags
    example = f"--good {tags[-2]} --bad {tags[-1]}" if len(tags) >= 2 else "--good REF --bad REF"
    console.print(f"next: bisector config check && bisector run {example}")
    if result.template is not None:  # last, as docs/cli.md says: what must happen before `run`
        console.print(
            f"note: commit {result.template} before bisecting: each commit is measured in its "
            "own checkout, so both endpoints must have it (`bisector run` refuses otherwise)"
        )
    return 0
