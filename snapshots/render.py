"""Rich renderables for snapshots and diffs (the CLI prints them on stderr)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snapshots.diff import Risk, SnapshotDiff
from snapshots.manifest import Snapshot

__all__ = ["diff_renderable", "snapshot_renderable", "snapshots_table"]

_RISK_STYLE = {Risk.HIGH: "bold red", Risk.MEDIUM: "yellow", Risk.LOW: "green"}


def _value(v: Any) -> str:
    return "" if v is None else json.dumps(v) if not isinstance(v, str) else v


def snapshots_table(snaps: Sequence[Snapshot], title: str = "snapshots") -> Table:
    t = Table(title=title)
    for col in ("id", "commit", "tags", "date", "configs", "deps", "envs", "subject"):
        t.add_column(col)
    for s in snaps:
        m = s.manifest
        t.add_row(
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


def snapshot_renderable(s: Snapshot) -> RenderableType:
    m = s.manifest
    head = Text(
        f"snapshot {s.id}\ncommit   {m.commit}\ntags     {', '.join(m.tags) or '-'}\n"
        f"date     {m.date}\nsubject  {m.subject}\ntaken    {s.created}"
    )
    configs = Table(title="config files")
    for col in ("path", "object", "bytes", "note"):
        configs.add_column(col)
    for c in m.configs:
        configs.add_row(c.path, c.object[:12], str(c.size), c.parse_error or "")
    deps = Table(title="declared dependencies")
    for col in ("name", "specifier", "version", "source", "marker"):
        deps.add_column(col)
    for d in m.dependencies:
        name = d.name + (f"[{','.join(d.extras)}]" if d.extras else "")
        deps.add_row(
            name,
            d.specifier,
            d.version or "",
            d.source + (f" ({d.group})" if d.group else ""),
            d.marker or "",
        )
    parts: list[RenderableType] = [head, configs, deps]
    for key, rec in s.environments.items():
        env = Table(title=f"environment {key} (newest)")
        env.add_column("package")
        env.add_column("version")
        for p in rec.resolved:
            env.add_row(p.name, p.version)
        facts = {k: v for k, v in rec.runtime.model_dump(exclude={"extra"}).items() if v}
        facts.update(rec.runtime.extra)
        parts += [env, Text("runtime  " + ", ".join(f"{k}={v}" for k, v in facts.items()))]
    if m.notes:
        parts.append(Text("notes:\n" + "\n".join(f"  {n}" for n in m.notes)))
    return Group(*parts)


def diff_renderable(d: SnapshotDiff) -> RenderableType:
    title = f"{d.a.ref} ({d.a.commit[:10]}) -> {d.b.ref} ({d.b.commit[:10]})"
    if d.empty:
        return Text(f"{title}: no config or dependency changes")
    parts: list[RenderableType] = [Text(title, style="bold")]
    if d.configs:
        t = Table(title="config changes")
        for col in ("file", "key", "change", "old", "new", "risk"):
            t.add_column(col, overflow="fold")
        for c in d.configs:
            new = _value(c.new) + (f"  ({c.note})" if c.note else "")
            t.add_row(c.file, c.key or "(file)", c.change, _value(c.old), new, c.risk.value)
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
            t.add_row(
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
            t.add_row(
                r.env,
                r.fact,
                r.old or "",
                r.new or "",
                Text(r.risk.value, style=_RISK_STYLE[r.risk]),
            )
        parts.append(t)
    return Group(*parts)
