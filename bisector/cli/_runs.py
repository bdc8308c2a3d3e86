"""`bisector runs`: the runs recorded in the journal, newest first (id, range, status, culprit).

A run that ended in an error (`error`) is listed with why, a killed one as `running`.

The ids it prints are what `bisector report RUN_ID` takes (or `report latest`, the newest
finished one). Read-only: a store without a journal lists nothing and creates nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bisector.cli._common import ConfigOpt, JsonOpt, RepoOpt, emit_json, stderr_console

_SQLITE_MAX = 2**63 - 1  # a larger --limit means "all of them", as SQLite cannot take it


def runs(
    repo: RepoOpt = Path("."),
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 20,
    json_out: JsonOpt = False,
) -> int:
    """List the runs in the journal: id, range, status and culprit, newest first."""
    from bisector.config import load_config
    from bisector.store.journal import JOURNAL_NAME, Journal

    cfg = load_config(repo.resolve(), config)  # where the store is
    store = repo.resolve() / cfg.snapshots.store
    rows: list[dict[str, Any]] = []
    if (store / JOURNAL_NAME).is_file():  # opening it would create an empty one
        with Journal(store) as journal:
            with journal.reading_back("a run"):
                rows = [_row(r) for r in journal.runs(min(limit, _SQLITE_MAX))]
    if json_out:
        emit_json({"store": str(store), "runs": rows})
        return 0
    console = stderr_console()
    if not rows:
        console.print(f"no runs are recorded in {store}")
        return 0
    for r in rows:
        culprit = r["culprit"]
        named = "–" if culprit is None else f"{culprit['commit'][:10]} {culprit['subject']!r}"
        if r["error"]:
            named += f"  ({r['error']})"
        console.print(
            f"{r['run_id']}  {r['started']}  {_ref(r['good'], r['good_commit'])}.."
            f"{_ref(r['bad'], r['bad_commit'])}  {r['metric']}  {r['builder']}  "
            f"{r['status']}  {named}"
        )
    console.print("`bisector report RUN_ID` (or `report latest`) prints a run's report")
    return 0


def _ref(ref: str, sha: str | None) -> str:
    """The ref as typed and the commit it meant then: `HEAD~1` or a branch means another
    commit tomorrow (a commit id typed as the ref is shown once)."""
    if not sha or sha.startswith(ref):
        return ref
    return f"{ref} ({sha[:10]})"


def _row(run: Any) -> dict[str, Any]:
    """One run as `runs --json` lists it (the culprit from its document, when it finished)."""
    doc = run.result or {}
    culprit = doc.get("culprit") if isinstance(doc.get("culprit"), dict) else None
    if culprit is not None and not isinstance(culprit.get("commit"), str):
        raise ValueError("its culprit names no commit")
    reused = doc.get("reused") if isinstance(doc.get("reused"), dict) else None
    return {
        "run_id": run.id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.created)),
        "good": run.good_ref,
        "bad": run.bad_ref,
        "good_commit": run.good_sha,
        "bad_commit": run.bad_sha,
        "metric": run.metric,
        "builder": run.options.get("builder"),
        "status": run.status,
        "culprit": None
        if culprit is None
        else {
            "commit": culprit.get("commit"),
            "subject": culprit.get("subject"),
            "kind": culprit.get("kind"),
        },
        "measurements": doc.get("measurements"),
        "reused_trials": None if reused is None else reused.get("trials"),
        "report": doc.get("report"),
        "error": run.error,
    }
