"""Reports of a run: the contract's JSON document and a Markdown page, from one document.

The pipeline stores the full document in the journal, so `bisector report RUN_ID`
renders exactly what the run decided, without measuring anything again. Writes are
atomic (temp file in the target folder, fsync, rename).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bisector.document import Comparison, Culprit, Endpoint, Range, RunDocument
from bisector.engine.benchkey import bench_key
from bisector.errors import StoreError
from bisector.plumbing.atomic import atomic_write_bytes
from bisector.plumbing.escape import markdown_code as code
from bisector.plumbing.escape import markdown_text as text
from bisector.report.isolation import render_isolation
from bisector.report.wording import (
    MOVED_THE_OTHER_WAY,
    moved_the_other_way,
    percent,
    share_note,
    share_shown,
)
from bisector.store.runid import ISOLATION_KEY

if TYPE_CHECKING:
    from bisector.config import Config
    from bisector.store.journal import Journal

CONTRACT_KEYS = (
    "status",
    "metric",
    "good",
    "bad",
    "culprit",
    "culprits",
    "suspect",
    "range",
    "noise",
    "steps",
    "measurements",
    "wall_s",
    "report",
)
NEWER_KEYS = ("culprits", "suspect", "noise")
EXTRA_KEYS = (
    "run_id",
    "verification",
    "isolation",
    "details",
    "rollback",
    "options",
    "bench_key",
    "reused",
    "node_types",
)


def contract_view(doc: RunDocument) -> dict[str, Any]:
    """The JSON document of DESIGN.md (the stored document has extra detail keys)."""
    data = doc.to_json()
    # `culprits`, `suspect` and `noise` are absent from documents stored before them
    out = {k: data.get(k) for k in CONTRACT_KEYS if k in data or k not in NEWER_KEYS}
    for extra in EXTRA_KEYS:
        if extra in data:
            out[extra] = data[extra]
    return out


def _fmt(value: Any, digits: int) -> str:
    """`value` to `digits` decimals: medians and shifts to 3, as the terminal and the page."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _endpoint_row(name: str, e: Endpoint | None, shift: str) -> str:
    ref, commit, value = (None, "", None) if e is None else (e.ref, e.commit, e.value)
    return f"| {name} | {code(str(ref), in_table=True)} | `{commit[:10]}` | {_fmt(value, 3)} | {shift}|"


def render_markdown(doc: RunDocument) -> str:
    details = doc.details
    repro = details.reproduction
    lines = [f"# bisector run {doc.run_id or ''}", ""]
    lines += [
        f"**Status:** `{doc.status.value}` · **metric:** {code(doc.metric)} · "
        f"**measurements:** {doc.measurements} · **wall time:** {_fmt(doc.wall_s, 1)} s",
        "",
        *_reuse_lines(doc),
        "## Endpoints",
        "",
        "| endpoint | ref | commit | median | 95% CI of the shift vs good |",
        "| --- | --- | --- | --- | --- |",
        _endpoint_row("good", doc.good, ""),
        _endpoint_row("bad", doc.bad, f"{_ci(repro)} "),
        "",
    ]
    if repro:
        lines += [
            f"Reproduction: shift {_fmt(repro.effect, 3)} ({_pct(repro.relative_effect)}), "
            f"p = {_fmt(repro.p_value, 4)}.",
            "",
        ]
    lines += ["## Culprit", ""]
    lines += _culprit_lines(doc) if doc.culprit else _range_lines(doc.range)
    lines += _candidate_lines(doc.details.candidates)
    lines += _steps_found_lines(doc)
    lines += _suspect_lines(doc.suspect)
    lines += _noise_lines(doc)
    verification = doc.verification
    if verification:
        comp = verification.comparison
        lines += [
            "",
            "## Verification",
            "",
            f"- verified: **{'yes' if verification.verified else 'no'}** — "
            f"{text(verification.note)}",
            f"- culprit vs parent: shift {_fmt(comp and comp.effect, 3)} "
            f"({_pct(verification.relative_effect)}), p = {_fmt(comp and comp.p_value, 4)}, "
            f"CI {_ci(comp)}",
        ]

    lines += render_isolation(doc.isolation)
    lines += _node_type_lines(doc)
    typed = any(step.node_type is not None for step in doc.steps)
    lines += [
        "",
        "## Steps",
        "",
        "| # | phase | commit | "
        + ("node type | " if typed else "")
        + "verdict | trials | median |",
        "| --- " * (7 if typed else 6) + "|",
    ]
    for i, step in enumerate(doc.steps, 1):
        on = f"{code(step.node_type or '–', in_table=True)} | " if typed else ""
        # An endpoint's step carries its role, not a verdict: "bad" beside a run that
        # reproduced nothing read as if the bad end had been judged bad.
        said = f"{step.verdict.value} endpoint" if step.phase == "reproduce" else step.verdict.value
        lines.append(
            f"| {i} | {step.phase} | `{step.commit[:10]}` | {on}{said} | "
            f"{step.samples} | {_fmt(step.median, 3)} |"
        )
    return "\n".join(lines) + "\n"


def _node_type_lines(doc: RunDocument) -> list[str]:
    """The ray executor's kinds of machine, each with its trials (docs/ray.md)."""
    if not doc.node_types:
        return []
    lines = [
        "",
        "## Node types",
        "",
        "Each candidate was judged only against trials of its own node type.",
        "",
        "| node type | GPU | CPU | trials | reused | benchmark key |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for t in doc.node_types:
        gpu, cpu = t.fingerprint.get("gpu") or "–", t.fingerprint.get("cpu") or "–"
        lines.append(
            f"| {code(t.node_type or '(any)', in_table=True)} | {text(gpu)} | {text(cpu)} | "
            f"{t.trials} | {t.reused} | `{t.bench_key}` |"
        )
    return lines


def _reuse_lines(doc: RunDocument) -> list[str]:
    reused = doc.reused
    if reused is None:
        return []
    runs = ", ".join(f"`{r}` ({n})" for r, n in reused.runs.items())
    return [
        f"**Trials reused from the journal:** {reused.trials} (builder `{reused.builder}`, "
        f"same benchmark){': ' + runs if runs else ''}",
        "",
    ]


def _culprit_lines(doc: RunDocument) -> list[str]:
    culprit = doc.culprit
    assert culprit is not None
    info = doc.details.culprit_commit
    lines = [
        f"`{culprit.commit[:10]}` **{text(culprit.subject)}** ({culprit.kind})",
        "",
        f"- author: {text(info.author) if info else '?'}, date: {text(info.date) if info else '?'}",
        f"- effect: {_pct(culprit.effect)}, "
        + (f"share of the range's shift: {shown}, " if (shown := share_shown(culprit)) else "")
        + f"confidence: {_fmt(culprit.confidence, 3)}",
    ]
    if note := share_note(doc, culprit):
        lines.append(f"- note: {text(note)}")
    for dep in culprit.dependencies:
        lines.append(
            f"- dependency: {code(dep.name)} {text(str(dep.from_version))} → {text(str(dep.to_version))}"
            + (
                f", first bad version {text(dep.first_bad_version)}"
                if dep.first_bad_version
                else ""
            )
            + ("" if dep.verified is not False else " (**unverified**)")
        )
    for key in culprit.config_keys:
        lines.append(f"- config key: {code(key)}")
    if info and info.diffstat:
        lines += ["", "```", info.diffstat, "```"]
    return lines


def _range_lines(rng: Range | None) -> list[str]:
    if rng is None:
        return ["No single culprit. "]
    unclear = (
        ""
        if rng.unclear is None
        else ", unclear: " + (", ".join(f"`{u[:10]}`" for u in rng.unclear) or "none")
    )
    return [
        "No single culprit. "
        f"Range: last good `{rng.last_good[:10]}`, first bad `{rng.first_bad[:10]}`, untestable: "
        + (", ".join(f"`{u[:10]}`" for u in rng.untestable) or "none")
        + unclear
    ]


def _candidate_lines(candidates: tuple[str, ...] | None) -> list[str]:
    """Where the first bad commit is, when inconclusive: every commit it may be (the
    range's ends alone left the reader to count them)."""
    if not candidates:
        return []
    n = len(candidates)
    shown = ", ".join(f"`{c[:10]}`" for c in candidates[:20]) + (", ..." if n > 20 else "")
    return ["", f"The first bad commit is one of {n} commit{'' if n == 1 else 's'}: {shown}"]


def _steps_found_lines(doc: RunDocument) -> list[str]:
    """Every verified regression step, when there is more than the one above."""
    found = doc.culprits or ()
    if len(found) < 2 and (not found or doc.culprit is not None):
        return []
    lines = [
        "",
        "### Every regression step of the range",
        "",
        "| commit | subject | kind | effect | share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in found:
        share = share_shown(c) or "–"
        lines.append(
            f"| `{c.commit[:10]}` | {text(c.subject)} | {c.kind} | {_pct(c.effect)} | {share} |"
        )
    notes = [f"- `{c.commit[:10]}`: {text(note)}" for c in found if (note := share_note(doc, c))]
    return lines + ([""] + notes if notes else [])


def _suspect_lines(suspect: Culprit | None) -> list[str]:
    if suspect is None:
        return []
    evidence = suspect.evidence
    return [
        "",
        "### Suspect (**unverified**)",
        "",
        f"`{suspect.commit[:10]}` **{text(suspect.subject)}**: effect {_pct(suspect.effect)} against its parent in fresh "
        + (f"trials ({MOVED_THE_OTHER_WAY}), " if moved_the_other_way(suspect) else "trials, ")
        + f"p = {_fmt(evidence and evidence.p_value, 4)}. {text(suspect.note or '')}".rstrip(),
    ]


def _noise_lines(doc: RunDocument) -> list[str]:
    noise = doc.noise
    if noise is None:
        return []
    lines = [
        "",
        "### Noise",
        "",
        f"Between-process spread {noise.between_process_cv * 100:.1f}%, within-process "
        f"{noise.within_process_cv * 100:.1f}%, drift of the endpoints {noise.endpoint_drift * 100:.1f}%.",
    ]
    if noise.warning:
        lines += ["", f"**Warning:** {noise.warning}"]
    return lines


def _pct(value: Any) -> str:
    return "–" if value is None else percent(value)


def _ci(comp: Comparison | None) -> str:
    if comp is None or not comp.ci:
        return ""
    low, high = (("–" if v is None else f"{v:.3f}") for v in comp.ci)
    return f"[{low}, {high}]"


def stored_document(journal: Journal, run_id: str, cfg: Config) -> RunDocument:
    """A finished run's document, read back from the journal.

    Documents stored before the options and the benchmark key travelled inside take them
    from the journal (the run's row; the key of its trials), and a run without trials of
    its own from the current config, as those versions did.
    """
    with journal.reading_back(f"run {run_id}"):
        row = journal.run(run_id)
    if row.key.startswith(ISOLATION_KEY):
        raise StoreError(
            f"run {run_id} is an isolation (`bisector deps` or `bisector config`), which has "
            "no report",
            hint="its document is what that command printed with --json; `bisector runs` "
            "lists the bisections, which have reports",
        )
    if row.errored:
        raise StoreError(
            f"run {run_id} ended in an error: {row.error or 'unknown'}",
            hint="fix the cause, then run the same `bisector run` again: it starts a new run "
            "(`bisector runs` lists it)",
        )
    if row.result is None:
        raise StoreError(
            f"run {run_id} has not finished", hint="run the same `bisector run` again to resume it"
        )
    with journal.reading_back(f"run {run_id}"):
        doc = RunDocument.from_json(row.result, options=row.options)
        if doc.good is None or doc.bad is None:  # every finished bisection names both
            raise ValueError("the document has no endpoints")
    if doc.bench_key is None:
        doc = replace(doc, bench_key=journal.run_bench_key(run_id) or bench_key(cfg))
    return doc


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


def write_reports(doc: RunDocument, report_dir: Path) -> Path:
    """Write report.md and report.json into `report_dir`; returns the Markdown path."""

    md = report_dir / "report.md"
    atomic_write_text(
        report_dir / "report.json", json.dumps(contract_view(doc), indent=2, default=str) + "\n"
    )
    atomic_write_text(md, render_markdown(doc))
    return md
