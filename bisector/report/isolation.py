"""The Markdown section of an isolation (the run document's `isolation`): steps and verification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bisector.document import Isolation
from bisector.plumbing.escape import markdown_code as code
from bisector.plumbing.escape import markdown_text as text
from bisector.report.wording import percent


def _pct(value: Any) -> str:
    return "–" if value is None else percent(value)


def _check(check: Mapping[str, Any]) -> str:
    mark = "passed" if check.get("passed") else "**failed**"
    conf = check.get("confidence")
    return (
        f"{mark}: {text(str(check.get('state')))} — shift {_pct(check.get('relative_effect'))}, "
        f"confidence {'–' if conf is None else f'{conf:.3f}'}, {check.get('samples')} trials"
    )


def render_isolation(iso: Isolation | None) -> list[str]:
    """Lines of the `## Isolation` section (empty when there is none)."""
    if iso is None:
        return []
    lines = ["", "## Isolation", ""]
    if iso.error is not None:
        return [*lines, f"Isolation failed: {text(iso.error)}"]
    lines.append(f"Kind: **{iso.kind}** · code alone (old pins and keys): {iso.code_alone or '–'}")
    if iso.changes:
        lines += ["", f"Changes in the commit ({len(iso.changes)}):", ""]
        for c in iso.changes:
            what = (
                c.get("name")
                if c.get("kind") == "dependency"
                else f"{c.get('file')}:{c.get('key')}"
            )
            lines.append(
                f"- {c.get('kind')} {code(str(what))}: {text(str(c.get('from')))} → "
                f"{text(str(c.get('to')))} ({c.get('change')})"
            )
    for name, version in iso.first_bad_versions.items():
        tried = ", ".join(iso.versions_tried.get(name, ()))
        lines.append(
            f"- first bad version of {code(name)}: **{text(version)}** (versions: {text(tried)})"
        )
    for note in iso.notes:
        lines.append(f"- note: {text(note)}")
    if iso.steps:  # a commit without pins or keys to split has none: no empty table
        lines += ["", "| # | phase | state | verdict |", "| --- | --- | --- | --- |"]
    for i, step in enumerate(iso.steps, 1):
        lines.append(f"| {i} | {text(step.phase)} | {text(step.state)} | {text(step.verdict)} |")
    if iso.verification:
        lines += ["", "### Verification of each item", ""]
        for v in iso.verification:
            status = "verified" if v.get("verified") else "**UNVERIFIED**"
            lines.append(
                f"- {code(str(v.get('item')))}: {status}"
                + (f" ({text(str(v['note']))})" if v.get("note") else "")
            )
            lines.append(f"  - reverted from the bad state: {_check(v.get('reverted') or {})}")
            lines.append(f"  - applied to the good state: {_check(v.get('applied') or {})}")
    return lines
