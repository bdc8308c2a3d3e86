"""Rich renderables for snapshots and diffs (the CLI prints them on stderr).

Subjects, tags, paths, config keys and values, package names come from the repository:
each goes through `visible` (`_row`, `_text`), so no terminal escape sequence and no bidi
override reaches the terminal, and a table cell through `one_line`: a line break in a file
name (git allows one) or a key would continue the row on a line that reads as another.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from bisector.plumbing.escape import one_line, visible
from snapshots.diff import Risk, SnapshotDiff
from snapshots.manifest import Snapshot

if TYPE_CHECKING:
    from snapshots.api import Listed

__all__ = ["diff_renderable", "listing_renderable", "snapshot_renderable", "snapshots_table"]

_RISK_STYLE = {Risk.HIGH: "bold red", Risk.MEDIUM: "yellow", Risk.LOW: "green"}


def _value(v: Any) -> str:
    return "" if v is None else json.dumps(v) if not isinstance(v, str) else v


def _row(table: Table, *cells: str | Text) -> None:
    """`table.add_row` with each text cell made `visible`, on one line."""
    table.add_row(
        *(
            Text(one_line(c.plain), style=c.style) if isinstance(c, Text) else one_line(c)
            for c in cells
        )
    )


def _text(text: str | Text, style: str = "") -> Text:
    if isinstance(text, Text):
        return Text(visible(text.plain), style=text.style)
    return Text(visible(text), style=style)


def snapshots_table(snaps: Sequence[Snapshot], title: str = "snapshots") -> Table:
    t = Table(title=title)
    for col in ("id", "commit", "tags", "date", "configs", "deps", "envs", "subject"):
        t.add_column(col)
    for s in snaps:
        m = s.manifest
        _row(
            t,
            s.id[:12],
            m.commit[:10],
            ", ".join(m.tags),
            m.date,
            str(len(m.configs)),
            str(len(m.dependencies)),
            str(len(s.environments)),
            m.subject,
        )
    return t


def listing_renderable(listed: Sequence[Listed]) -> RenderableType:
    """`snapshot list`: every stored snapshot with its state; below the table, what is
    wrong with each damaged one (the reason names the object and its path)."""
    t = Table(title="snapshots")
    for col in ("id", "state", "commit", "tags", "date", "configs", "deps", "envs", "subject"):
        t.add_column(col)
    reasons: list[RenderableType] = []
    for item in listed:
        e, s = item.entry, item.snapshot
        counts = ("?", "?", "?")  # a damaged manifest's counts are not to be trusted
        if s is not None:
            m = s.manifest
            counts = (str(len(m.configs)), str(len(m.dependencies)), str(len(s.environments)))
        state = Text("ok") if item.damage is None else Text("DAMAGED", style="bold red")
        _row(t, e.id[:12], state, e.commit[:10], ", ".join(e.tags), e.date, *counts, e.subject)
        if item.damage is not None:
            reasons.append(
                _text(f"damaged {e.id[:12]}: {one_line(item.damage.message)}", style="red")
            )
    return Group(t, *reasons)


def snapshot_renderable(s: Snapshot) -> RenderableType:
    m = s.manifest
    head = _text(
        f"snapshot {s.id}\ncommit   {m.commit}\ntags     {one_line(', '.join(m.tags)) or '-'}\n"
        f"date     {m.date}\nsubject  {one_line(m.subject)}\ntaken    {s.created}"
    )
    configs = Table(title="config files")
    for col in ("path", "object", "bytes", "note"):
        configs.add_column(col)
    for c in m.configs:
        _row(configs, c.path, c.object[:12], str(c.size), c.parse_error or "")
    deps = Table(title="declared dependencies")
    for col in ("name", "specifier", "version", "source", "marker"):
        deps.add_column(col)
    for d in m.dependencies:
        name = d.name + (f"[{','.join(d.extras)}]" if d.extras else "")
        _row(
            deps,
            name,
            d.specifier,
            d.version or "",
            d.source + (f" ({d.group})" if d.group else ""),
            d.marker or "",
        )
    parts: list[RenderableType] = [head, configs, deps]
    for key, rec in s.environments.items():
        env = Table(title=visible(f"environment {key} (newest)"))
        env.add_column("package")
        env.add_column("version")
        for p in rec.resolved:
            _row(env, p.name, p.version)
        facts = {k: v for k, v in rec.runtime.model_dump(exclude={"extra"}).items() if v}
        facts.update(rec.runtime.extra)
        parts += [env, _text("runtime  " + ", ".join(f"{k}={v}" for k, v in facts.items()))]
    if m.notes:
        parts.append(_text("notes:\n" + "\n".join(f"  {one_line(n)}" for n in m.notes)))
    return Group(*parts)


def diff_renderable(d: SnapshotDiff) -> RenderableType:
    title = f"{d.a.ref} ({d.a.commit[:10]}) -> {d.b.ref} ({d.b.commit[:10]})"
    if d.empty:
        return _text(f"{title}: no config or dependency changes")
    parts: list[RenderableType] = [_text(title, style="bold")]
    if d.configs:
        t = Table(title="config changes")
        for col in ("file", "key", "change", "old", "new", "risk"):
            t.add_column(col, overflow="fold")
        for c in d.configs:
            # a type change (`1` -> `"1"`) shows both sides as JSON, or it reads `1 -> 1`
            show = (
                json.dumps if c.change == "changed" and type(c.old) is not type(c.new) else _value
            )
            new = ("" if c.new is None else show(c.new)) + (f"  ({c.note})" if c.note else "")
            old_text = "" if c.old is None else show(c.old)
            _row(t, c.file, c.key or "(file)", c.change, old_text, new, c.risk.value)
        parts.append(t)
    for label, changes in (
        ("packages (declared)", d.packages),
        ("packages (resolved)", d.resolved),
    ):
        if not changes:
            continue
        t = Table(title=label)
        for col in ("package", "change", "from", "to", "risk"):
            t.add_column(col)
        for p in changes:
            name = f"{p.name} [{p.env}]" if p.env else p.name
            _row(
                t,
                name,
                p.change,
                p.old or "",
                p.new or "",
                Text(p.risk.value, style=_RISK_STYLE[p.risk]),
            )
        parts.append(t)
    if d.runtime:
        t = Table(title="runtime")
        for col in ("env", "fact", "from", "to", "risk"):
            t.add_column(col)
        for r in d.runtime:
            _row(
                t,
                r.env,
                r.fact,
                r.old or "",
                r.new or "",
                Text(r.risk.value, style=_RISK_STYLE[r.risk]),
            )
        parts.append(t)
    return Group(*parts)
