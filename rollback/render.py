"""Human-readable lines for a rollback result (the CLI prints them on stderr).

The plan is what a person confirms before a rollback, and its paths, keys and values come
from the repository: every line goes through `visible` (no terminal escape sequence, no
bidi override reaches the terminal), and a key, a value, a file name or the target is kept on its line (`\\n`).
"""

from __future__ import annotations

import json
from typing import Any

from bisector.plumbing.escape import visible
from rollback.request import RollbackResult

_SIGN = {"added": "+", "removed": "-", "changed": "~"}


_VALUE_CHARS = 200  # of a key's value on screen; `--json` has it whole


def _value(v: Any) -> str:
    """A key's value on one line, cut when long: a certificate or a blob printed whole
    would bury the plan and its confirmation prompt."""
    text = json.dumps(v, default=str) if not isinstance(v, str) else _one_line(v)
    if len(text) <= _VALUE_CHARS:
        return text
    return f"{text[: _VALUE_CHARS - 3]}... ({len(text):,} characters; --json shows it whole)"


def _one_line(text: str) -> str:
    """`text` on one line: a line break in a key or value cannot start a line of the plan."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


_OUTPUT_LINES = 20  # of the health check's output (itself capped when it is read)


def _output_lines(tail: str) -> list[str]:
    """The last lines the failed health check printed, indented, or a note that it printed none."""
    lines = tail.rstrip().splitlines()[-_OUTPUT_LINES:]
    if not lines:
        return ["  (the health check printed nothing)"]
    return ["  health check output (last lines):", *(f"  | {line}" for line in lines)]


def describe(result: RollbackResult) -> list[str]:
    lines: list[str] = []
    if result.recovered is not None:
        lines.append(f"recovered: {result.recovered.message}")
    verb = {
        "dry_run": "plan (dry run, nothing changed)",
        "unchanged": "already live, nothing to do",
        "applied": "rolled back",
        "restored": "health check FAILED; previous configs restored",
        "kept": "health check FAILED; new configs kept (on_failure: keep)",
    }[result.status]
    lines.append(f"{verb}: {_one_line(str(result.target))} -> {_one_line(result.label)}")
    for change in result.plan.changes:
        lines.append(f"  {_SIGN[change.kind]} {_one_line(change.path)}")
        for key in change.keys:
            # A key one side lacks is `(absent)`, as `run` prints it: `null` would read as
            # YAML's null, a value the file could hold.
            before = "(absent)" if key.kind == "added" else _value(key.before)
            after = "(absent)" if key.kind == "removed" else _value(key.after)
            lines.append(f"      {_one_line(key.key)}: {before} -> {after}")
        if change.unparsed:
            lines.append("      (not parseable as YAML: keys not shown)")
    if result.plan.empty:
        lines.append("  (no file changes)")
    if result.drift:
        drift = ", ".join(_one_line(path) for path in result.drift)
        lines.append(f"drifted (edited since bisector wrote them): {drift}")
    if result.health is not None:
        lines.append(f"health check: {result.health.reason} ({result.health.seconds:.2f}s)")
        if not result.health.ok:
            lines.extend(_output_lines(result.health.output_tail))
    if result.status in ("restored", "kept"):
        live = result.live or "nothing (the target was removed again)"
        lines.append(f"live now: {live}")
    if result.paused:
        lines.append("bisector is PAUSED; lift it with `bisector resume`")
    lines.append(f"took {result.seconds:.3f}s")
    return [visible(line) for line in lines]
