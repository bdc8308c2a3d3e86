"""Reports of a run: the contract's JSON document and a Markdown page, from one dict.

The pipeline stores the full document in the journal, so `bisector report RUN_ID`
renders exactly what the run decided, without measuring anything again. Writes are
atomic (temp file in the target folder, fsync, rename).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bisector.plumbing.atomic import atomic_write_bytes

CONTRACT_KEYS = (
    "status", "metric", "good", "bad", "culprit", "range", "steps",
    "measurements", "wall_s", "report",
)


def contract_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of DESIGN.md (the stored document has extra detail keys)."""
    out = {k: doc.get(k) for k in CONTRACT_KEYS}
    for extra in ("run_id", "verification", "isolation", "details", "rollback"):
        if extra in doc:
            out[extra] = doc[extra]
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(doc: Mapping[str, Any]) -> str:
    metric = doc.get("metric", "?")
    details: Mapping[str, Any] = doc.get("details") or {}
    good, bad = doc.get("good") or {}, doc.get("bad") or {}
    lines = [f"# bisector run {doc.get('run_id', '')}", ""]
    lines += [
        f"**Status:** `{doc.get('status')}` · **metric:** `{metric}` · "
        f"**measurements:** {doc.get('measurements')} · **wall time:** {_fmt(doc.get('wall_s'), 1)} s",
        "",
        "## Endpoints",
        "",
        "| endpoint | ref | commit | median | 95% CI of the shift vs good |",
        "| --- | --- | --- | --- | --- |",
        f"| good | `{good.get('ref')}` | `{str(good.get('commit', ''))[:10]}` | {_fmt(good.get('value'))} | |",
        f"| bad | `{bad.get('ref')}` | `{str(bad.get('commit', ''))[:10]}` | {_fmt(bad.get('value'))} | "
        f"{_ci(details.get('reproduction'))} |",
        "",
    ]
    repro = details.get("reproduction")
    if repro:
        lines += [
            f"Reproduction: shift {_fmt(repro.get('effect'))} ({_pct(repro.get('relative_effect'))}), "
            f"p = {_fmt(repro.get('p_value'), 4)}.",
            "",
        ]
    culprit = doc.get("culprit")
    lines += ["## Culprit", ""]
    if culprit:
        info: Mapping[str, Any] = details.get("culprit_commit") or {}
        lines += [
            f"`{culprit['commit'][:10]}` **{culprit.get('subject', '')}** ({culprit.get('kind')})",
            "",
            f"- author: {info.get('author', '?')}, date: {info.get('date', '?')}",
            f"- effect: {_pct(culprit.get('effect'))}, confidence: {_fmt(culprit.get('confidence'), 3)}",
        ]
        for dep in culprit.get("dependencies") or []:
            lines.append(
                f"- dependency: `{dep['name']}` {dep.get('from')} → {dep.get('to')}"
                + (f", first bad version {dep['first_bad_version']}" if dep.get("first_bad_version") else "")
                + ("" if dep.get("verified", True) else " (**unverified**)")
            )
        for key in culprit.get("config_keys") or []:
            lines.append(f"- config key: `{key}`")
        if info.get("diffstat"):
            lines += ["", "```", str(info["diffstat"]), "```"]
    else:
        rng = doc.get("range") or {}
        lines.append(
            "No single culprit. "
            + (
                f"Range: last good `{str(rng.get('last_good', ''))[:10]}`, first bad "
                f"`{str(rng.get('first_bad', ''))[:10]}`, untestable: "
                + ", ".join(f"`{u[:10]}`" for u in rng.get("untestable") or [])
                if rng
                else ""
            )
        )
    verification = doc.get("verification")
    if verification:
        lines += [
            "",
            "## Verification",
            "",
            f"- verified: **{verification.get('verified')}** — {verification.get('note', '')}",
            f"- culprit vs parent: shift {_fmt(verification.get('effect'))} "
            f"({_pct(verification.get('relative_effect'))}), p = {_fmt(verification.get('p_value'), 4)}, "
            f"CI {_ci(verification)}",
        ]
    from bisector.report.isolation import render_isolation

    lines += render_isolation(doc.get("isolation") or {})
    lines += ["", "## Steps", "", "| # | phase | commit | verdict | trials | median |", "| --- | --- | --- | --- | --- | --- |"]
    for i, step in enumerate(doc.get("steps") or [], 1):
        lines.append(
            f"| {i} | {step.get('phase', '')} | `{str(step.get('commit', ''))[:10]}` | {step.get('verdict')} | "
            f"{step.get('samples')} | {_fmt(step.get('median'))} |"
        )
    return "\n".join(lines) + "\n"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


def _ci(comp: Any) -> str:
    if not comp or not comp.get("ci"):
        return ""
    low, high = (("–" if v is None else f"{v:.2f}") for v in comp["ci"])
    return f"[{low}, {high}]"


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


def write_reports(doc: Mapping[str, Any], report_dir: Path) -> Path:
    """Write report.md and report.json into `report_dir`; returns the Markdown path."""
    import json

    md = report_dir / "report.md"
    atomic_write_text(report_dir / "report.json", json.dumps(contract_view(doc), indent=2, default=str) + "\n")
    atomic_write_text(md, render_markdown(doc))
    return md
