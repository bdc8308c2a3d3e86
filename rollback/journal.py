"""The intent journal of a rollback, and recovery of an interrupted one.

`intent.json` is written (atomically, fsynced) before the first change and removed after
the last, so its presence at start-up means a rollback was interrupted. Its phase says
how far it got:

* `apply`: the new generation may or may not be live. If the live path points at it,
  the switch happened: the rollback is *finished* (and, when a health check was
  configured but not confirmed, flagged so the caller pauses for a human). Otherwise
  nothing switched and it is *undone* (staging removed, live set untouched).
* `commit`: the switch and the health check succeeded; only bookkeeping was left.
* `undo`: the health check failed (or the apply was stopped) and the previous generation
  was being put back: recovery finishes putting it back.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from dataclasses import fields as dataclass_fields
from typing import Literal

from bisector.errors import RollbackError
from bisector.log import get_logger
from bisector.plumbing.atomic import atomic_write_bytes, fsync_dir
from rollback.apply import (
    collect_garbage,
    discard_leftovers,
    os_reason,
    put_back_displaced,
    switch,
    unlink_live,
)
from rollback.checkpoints import point
from rollback.health import end_orphaned
from rollback.layout import (
    Layout,
    is_gen_name,
    json_kind,
    live_state,
    read_manifest,
    write_live_record,
)

log = get_logger("bisector.rollback")

Phase = Literal["apply", "commit", "undo"]
Outcome = Literal["finished", "finished_unverified", "undone", "restored"]
_TOKEN = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Intent:
    op: str
    phase: Phase
    to_gen: str
    to_label: str
    from_gen: str | None  # None: the live path did not exist before
    health_check: bool
    pause_on_failure: bool
    reason: str | None = None  # why an undo started
    # The health check's run token, recorded before it starts: recovery kills what a
    # killed rollback left running (absent in an intent of an older bisector).
    health_token: str | None = None


@dataclass(frozen=True)
class RecoveryOutcome:
    """What recovery did with an interrupted rollback."""

    op: str
    outcome: Outcome
    live_label: str | None
    reason: str | None
    needs_pause: bool

    @property
    def message(self) -> str:
        return {
            "finished": "an interrupted rollback had already switched; it was finished",
            "finished_unverified": (
                "an interrupted rollback had switched but its health check was not confirmed; "
                "the new set stays live and bisector is paused"
            ),
            "undone": "an interrupted rollback had not switched yet; it was undone",
            "restored": "an interrupted undo was finished: the previous set is live again",
        }[self.outcome]


def write_intent(layout: Layout, intent: Intent, *, step: str) -> None:
    atomic_write_bytes(layout.intent_path, json.dumps(asdict(intent)).encode())
    point(step)


def _intent_problem(doc: object) -> str | None:
    """What makes `doc` no intent (None: it is one)."""
    if not isinstance(doc, dict):
        return f"{json_kind(doc)}, not a JSON object"
    fields = {f.name for f in dataclass_fields(Intent)}
    if unknown := sorted(set(doc) - fields):
        return f"unknown field {unknown[0]!r}"
    checks: dict[str, Callable[[object], bool]] = {
        "op": lambda v: isinstance(v, str),
        "phase": lambda v: v in ("apply", "commit", "undo"),
        "to_gen": is_gen_name,
        "to_label": lambda v: isinstance(v, str),
        "from_gen": lambda v: v is None or is_gen_name(v),
        "health_check": lambda v: isinstance(v, bool),
        "pause_on_failure": lambda v: isinstance(v, bool),
        "reason": lambda v: v is None or isinstance(v, str),
        "health_token": lambda v: v is None or (isinstance(v, str) and bool(_TOKEN.fullmatch(v))),
    }
    for name, ok in checks.items():
        if name not in doc and name not in ("reason", "health_token"):
            return f"no {name!r}"
        if name in doc and not ok(doc[name]):
            return f"{name!r} is {json.dumps(doc[name])[:60]}"
    if not doc["to_gen"].endswith(f"-{doc['op']}"):
        # Every apply stages a fresh generation named after its op (`<set id>-<op>`).
        return f"'to_gen' {doc['to_gen']!r} is not a set of op {doc['op']!r}"
    return None


def _mismatch(layout: Layout, intent: Intent) -> str | None:
    """What in the folder contradicts `intent` (None: recovery may act on it).

    A real interrupted rollback leaves the live path at its previous set or its new one;
    an undo needs the previous set on disk (or, for a first apply, none live but its own).
    """
    state = live_state(layout)
    known = {intent.to_gen, intent.from_gen}
    if state.kind == "managed" and state.gen not in known:
        return f"the live path points at set {state.gen}, which this rollback did not switch"
    if intent.phase == "undo" and intent.from_gen is not None:
        if not layout.gen_dir(intent.from_gen).is_dir():
            return (
                f"the previous set {intent.from_gen} it would put back is not in {layout.sets_dir}"
            )
    return None


def read_intent(layout: Layout) -> Intent | None:
    try:
        doc = json.loads(layout.intent_path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        problem: str | None = str(exc)
    else:
        problem = _intent_problem(doc)
    if problem is not None:
        # Written by atomic rename, so this is not a torn write but outside damage.
        raise RollbackError(
            f"the rollback journal {layout.intent_path} is unreadable: {problem}",
            hint="check the live folder by hand, then delete the journal file",
        )
    return Intent(**doc)


def clear_intent(layout: Layout) -> None:
    layout.intent_path.unlink(missing_ok=True)
    fsync_dir(layout.state_dir)
    point("done")


def record_live(layout: Layout, gen: str | None) -> None:
    """Remember what bisector last wrote (the reference for drift detection)."""
    if gen is None:
        layout.live_record_path.unlink(missing_ok=True)
        fsync_dir(layout.state_dir)
    else:
        manifest = read_manifest(layout, gen) or {}
        write_live_record(
            layout, gen, str(manifest.get("set_id", "")), str(manifest.get("label", ""))
        )
    point("live_recorded")


def restore_previous(layout: Layout, intent: Intent) -> None:
    """Put the generation that was live before `intent` back (idempotent)."""
    if intent.from_gen is None:
        unlink_live(layout)
    elif live_state(layout).gen != intent.from_gen:
        switch(layout, intent.from_gen, step="undo_switched")
    record_live(layout, intent.from_gen)


def recover(layout: Layout) -> RecoveryOutcome | None:
    """Finish or undo an interrupted rollback on `layout` (caller holds the lock)."""
    intent = read_intent(layout)
    if intent is None:
        if layout.state_dir.is_dir():
            discard_leftovers(layout)
        return None
    if (problem := _mismatch(layout, intent)) is not None:
        raise RollbackError(
            f"the rollback journal {layout.intent_path} does not match the live folder: {problem}",
            hint="check the live folder by hand, then delete the journal file",
        )
    if intent.health_token is not None:
        # Before anything switches back: a check left running would probe the wrong set.
        end_orphaned(intent.health_token)
    discard_leftovers(layout)
    put_back_displaced(layout)
    state = live_state(layout)
    outcome: Outcome
    if intent.phase == "undo":
        restore_previous(layout, intent)
        outcome = "restored"
    elif state.kind == "managed" and state.gen == intent.to_gen:
        record_live(layout, intent.to_gen)
        outcome = (
            "finished"
            if intent.phase == "commit" or not intent.health_check
            else "finished_unverified"
        )
    elif intent.phase == "commit":
        raise RollbackError(
            f"rollback {intent.op} was committed but the live path does not point at it",
            hint="check the live folder by hand; `bisector rollback --force` rewrites it",
        )
    else:
        # Never switched: the new generation is unused (the previous one stays live).
        shutil.rmtree(layout.gen_dir(intent.to_gen), ignore_errors=True)
        layout.manifest_path(intent.to_gen).unlink(missing_ok=True)
        outcome = "undone"
    clear_intent(layout)
    collect_garbage(
        layout, keep={g for g in (intent.from_gen, intent.to_gen, live_state(layout).gen) if g}
    )
    live_label = intent.to_label if outcome.startswith("finished") else None
    result = RecoveryOutcome(
        op=intent.op,
        outcome=outcome,
        live_label=live_label,
        reason=intent.reason,
        needs_pause=outcome == "finished_unverified"
        or (outcome == "restored" and intent.pause_on_failure),
    )
    log.warning("rollback.recovered", op=intent.op, outcome=outcome, detail=result.message)
    return result


def unfinished_error(
    layout: Layout, intent: Intent, exc: OSError, failed_check: str | None
) -> RollbackError:
    """A write after the switch failed (a full disk): which set is live, and what the next
    command's recovery does with the intent last written (`failed_check`: why the health
    check failed, "health check exit 1"; None when it passed or did not run)."""
    state = live_state(layout)
    on_disk = read_intent(layout)
    if state.gen == intent.to_gen:
        live = f"the new set {intent.to_label} is live"
        if failed_check is not None:
            live += f" ({failed_check})"
    else:
        live = "the previous set is live again"
    if on_disk is None:
        then = "nothing is left to do"
    elif on_disk.phase == "undo":
        then = "the next bisector command puts the previous set back"
    elif state.gen != on_disk.to_gen:
        then = "the next bisector command drops the new set, which never went live"
    elif on_disk.phase == "commit" or not on_disk.health_check:
        then = "the next bisector command records it as live"
    else:
        then = (
            "the next bisector command keeps it and pauses bisector until `bisector resume`, "
            "as the journal does not say how its health check went"
        )
    return RollbackError(
        f"cannot finish the rollback of {layout.target}: {os_reason(exc)} in "
        f"{layout.state_dir}; {live}; {then}",
        hint="free space or fix permissions beside the target folder, then run "
        "`bisector status` (it finishes the rollback)",
    )


def with_phase(intent: Intent, phase: Phase, reason: str | None = None) -> Intent:
    return replace(intent, phase=phase, reason=reason if reason is not None else intent.reason)
