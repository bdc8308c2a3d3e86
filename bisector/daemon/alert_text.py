"""The words of the daemon's alerts: what was found, what the policy did, where the report is.

Pure functions of a run's document and of the policy's result, so the alert a person
reads in the channel can be checked without a webhook: each culprit by commit and, when
isolation narrowed it, by package (old → new, first bad version) or config key (old →
new value); then the action (rolled back to X / not rolled back, and why / paused); then
a link to the report (`daemon.report_url` + `<run id>/report.html`, else its path).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from bisector.alerts import AlertMessage
from bisector.config import Config
from bisector.document import RunDocument
from bisector.document.findings import Culprit
from bisector.report.wording import percent
from bisector.store.daemon_state import RangeRow


def report_link(report: str | None, run_id: str | None, report_url: str | None) -> str | None:
    """The report's URL under `daemon.report_url` (a base ending in `/`), else its path."""
    if report_url and run_id:
        return f"{report_url}{run_id}/report.html"
    return report


def _value(v: Any) -> str:
    return "∅" if v is None else (v if isinstance(v, str) else json.dumps(v))


def _items(c: Culprit, changes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The isolated items of one culprit: packages and config keys, with their values."""
    items = []
    for d in c.dependencies:
        text = f"package {d.name} {d.from_version or '∅'} → {d.to_version or '∅'}"
        if d.first_bad_version:
            text += f" (first bad version {d.first_bad_version})"
        items.append(text)
    for key in c.config_keys:
        change = next((ch for ch in changes if ch.get("key") == key), None)
        if change is None:
            items.append(f"config key {key}")
        else:
            items.append(
                f"config key {change.get('file')}:{key} "
                f"{_value(change.get('from'))} → {_value(change.get('to'))}"
            )
    return items


def culprit_text(c: Culprit, changes: Sequence[Mapping[str, Any]], several: bool) -> str:
    text = f"culprit {c.commit[:10]} {c.subject!r}"
    if several and c.share is not None:
        text += f" ({percent(c.share, signed=False, digits=0)} of it)"
    items = _items(c, changes)
    return text + (f": {', '.join(items)}" if items else "")


def found_text(doc: RunDocument) -> str:
    """Every culprit (with its packages / keys), or the range and the unverified suspect."""
    changes = [dict(ch) for ch in doc.isolation.changes] if doc.isolation else []
    if doc.culprit:
        steps = doc.culprits or (doc.culprit,)
        return "; ".join(culprit_text(c, changes, len(steps) > 1) for c in steps)
    rng = doc.range
    last_good, first_bad = (rng.last_good, rng.first_bad) if rng else (None, None)
    found = f"inconclusive, first bad within ({str(last_good)[:10]}, {str(first_bad)[:10]}]"
    if doc.suspect is not None:
        found += f", suspect {doc.suspect.commit[:10]} {doc.suspect.subject!r} (unverified)"
    return found


def finding_text(doc: RunDocument, good: str, bad: str) -> str:
    """One line: the metric, the range, the values, what was found (no action, no link)."""
    g = doc.good.value if doc.good else None
    b = doc.bad.value if doc.bad else None
    values = f" ({g:.3f} → {b:.3f})" if isinstance(g, float) and isinstance(b, float) else ""
    return (
        f"bisector: {doc.metric} regressed between {good} and {bad[:12]}{values}; {found_text(doc)}"
    )


def culprits_of(doc: RunDocument) -> list[str]:
    """Every culprit commit of a run (several for a multi-step regression)."""
    if not doc.culprit:
        return []
    return [c.commit for c in (doc.culprits or (doc.culprit,))]


def action_text(policy: str, to_ref: str, result: Mapping[str, Any] | None) -> str:
    """What the policy did, in words, from its result (`None`: the `report` policy)."""
    if result is None:
        return f"not rolled back: daemon.policy is {policy}"
    status = str(result.get("status"))
    reason = result.get("reason")
    if status == "by_guard":
        text = f"the guard rolled back to {result.get('to') or to_ref} before this bisection"
    elif status in ("applied", "unchanged"):
        text = f"rolled back to {result.get('to') or to_ref} ({status})"
    elif status == "not_rolled_back":
        text = f"not rolled back: {reason or 'unverified'}"
        if reason == "unverified":
            text += " (only a verified culprit moves the live configs)"
    elif status == "refused":
        text = f"not rolled back to {to_ref}: {reason}"
    elif status == "restored":
        text = f"rolled back to {to_ref}, but the health check failed: the previous set is back"
    elif status == "kept":
        text = f"rolled back to {to_ref}; the health check failed and the set was kept"
    else:
        text = f"rollback to {to_ref}: {status}" + (f" ({reason})" if reason else "")
    if result.get("paused"):
        text += "; bisector is paused until `bisector resume`"
    return text


def novelty_text(old: Sequence[str], new: Sequence[str]) -> str:
    """Which culprits are new, when an earlier alert named some (`old`); else ""."""
    if not old:
        return ""
    before = f"{', '.join(c[:10] for c in old)} alerted before"
    return (
        f"; new since an earlier alert: {', '.join(c[:10] for c in new)} ({before})"
        if new
        else f"; {before}"
    )


def range_alert(
    row: RangeRow, cfg: Config, to_ref: str, told: AbstractSet[str] = frozenset()
) -> AlertMessage:
    """The `bisect` alert of a range: finding (and which culprits are new, when an earlier
    alert named some: `told`); action; report link (see `alert_text`)."""
    result = row.detail.get("rollback")
    link = report_link(row.detail.get("report"), row.run_id, cfg.daemon.report_url)
    action = action_text(cfg.daemon.policy, to_ref, result)
    culprits = row.culprits
    old = [c for c in culprits if c in told]
    new = [c for c in culprits if c not in told]
    text = f"{row.detail.get('text')}{novelty_text(old, new)}; {action}"
    text += f"; report {link}" if link else ""
    extra = {
        "run_id": row.run_id,
        "culprit": row.culprit,
        "culprits": ",".join(culprits) if culprits else None,
        "already_alerted": ",".join(old) if old else None,
        "new_culprits": ",".join(new) if old else None,
        "report": link,
        "action": action,
        "rollback": None if result is None else str(result.get("status")),
        "rolled_back_to": (result or {}).get("to")
        if (result or {}).get("status") in ("applied", "unchanged", "by_guard")
        else None,
        "paused": "true" if (result or {}).get("paused") else None,
        "status": row.status,
    }
    # The policy did not act (refused, or an unverified run): a `rollback` alert, whose
    # reason says why; else a `bisect` alert, whose reason is the run's status.
    refused = result is not None and result.get("status") in ("refused", "not_rolled_back")
    return AlertMessage(
        text=text,
        step="rollback" if refused else "bisect",
        reason=str(result.get("reason")) if refused and result else str(row.status),
        extra={k: str(v) for k, v in extra.items() if v},
    )
