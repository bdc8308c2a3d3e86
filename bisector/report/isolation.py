"""The Markdown section of an isolation (`doc["isolation"]`): steps and verification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


def _check(check: Mapping[str, Any]) -> str:
    mark = "passed" if check.get("passed") else "**failed**"
    conf = check.get("confidence")
    return (f"{mark}: {check.get('state')} — shift {_pct(check.get('relative_effect'))}, "
            f"confidence {'–' if conf is None else f'{conf:.3f}'}, {check.get('samples')} trials")


def render_isolation(iso: Mapping[str, Any]) -> list[str]:
    """Lines of the `## Isolation` section (empty when there is none)."""
    if not iso:
        return []
    lines = ["", "## Isolation", ""]
    if "error" in iso:
        return [*lines, f"Isolation failed: {iso['error']}"]
    lines.append(f"Kind: **{iso.get('kind')}** · code alone (old pins and keys): {iso.get('code_alone') or '–'}")
    changes = iso.get("changes") or []
    if changes:
        lines += ["", f"Changes in the commit ({len(changes)}):", ""]
        for c in changes:
            what = c.get("name") if c.get("kind") == "dependency" else f"{c.get('file')}:{c.get('key')}"
            lines.append(f"- {c.get('kind')} `{what}`: {c.get('from')} → {c.get('to')} ({c.get('change')})")
    for name, version in (iso.get("first_bad_versions") or {}).items():
        tried = ", ".join(iso.get("versions_tried", {}).get(name, []))
        lines.append(f"- first bad version of `{name}`: **{version}** (versions: {tried})")
    for note in iso.get("notes") or []:
        lines.append(f"- note: {note}")
    lines += ["", "| # | phase | state | verdict |", "| --- | --- | --- | --- |"]
    for i, step in enumerate(iso.get("steps") or [], 1):
        lines.append(f"| {i} | {step.get('phase')} | {step.get('state')} | {step.get('verdict')} |")
    verification = iso.get("verification") or []
    if verification:
        lines += ["", "### Verification of each item", ""]
        for v in verification:
            status = "verified" if v.get("verified") else "**UNVERIFIED**"
            lines.append(f"- `{v.get('item')}`: {status}" + (f" ({v['note']})" if v.get("note") else ""))
            lines.append(f"  - reverted from the bad state: {_check(v.get('reverted') or {})}")
            lines.append(f"  - applied to the good state: {_check(v.get('applied') or {})}")
    return lines
