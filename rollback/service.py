"""A whole rollback: lock, recover, check drift, plan, apply, health check, failure policy.

This is the library function behind `bisector rollback` and the daemon's rollback
policy. Time is measured on the monotonic clock against one budget for the whole
operation (`rollback.timeout`), of which a reserve is kept so that an undo can still run
after a health check that used up its share.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bisector.alerts import AlertMessage, Delivery, send_alert
from bisector.config import Alert
from bisector.errors import RollbackError
from bisector.log import get_logger
from bisector.plumbing.escape import one_line
from bisector.plumbing.proc import new_token
from bisector.store.control import ControlStore
from rollback.apply import (
    collect_garbage,
    discard_leftovers,
    disk_error,
    gen_name,
    new_op_id,
    put_back_displaced,
    stage,
    switch,
)
from rollback.checkpoints import (
    ApplyInterrupted,
    shielded,
    sigterm_stops_between_steps,
    terminated,
)
from rollback.configset import ConfigSet
from rollback.drift import detect_drift
from rollback.health import HealthResult, run_health_check
from rollback.journal import (
    Intent,
    RecoveryOutcome,
    clear_intent,
    record_live,
    recover,
    restore_previous,
    unfinished_error,
    with_phase,
    write_intent,
)
from rollback.layout import Layout, live_state, read_live_files, read_manifest
from rollback.lock import LockedError, exclusive_lock
from rollback.plan import make_plan
from rollback.request import RollbackRequest, RollbackResult, Status
from rollback.target import check_kind

log = get_logger("bisector.rollback")


class DriftError(RollbackError):
    """The live files were edited since bisector last wrote them."""


class PausedError(RollbackError):
    """An automatic rollback (the daemon's policy, `run --rollback`) while bisector is paused."""


def _drop_unused_state(layout: Layout, exc_type: type[BaseException] | None) -> bool:
    """After a refusal: remove the state folder this rollback created and never used.

    A refused first rollback must leave nothing beside the target; a folder that holds a
    set, a record or an intent is bisector's state and stays. Never swallows the error.
    """
    if exc_type is None:
        return False
    used = (
        layout.intent_path.exists()
        or layout.live_record_path.exists()
        or (layout.sets_dir.is_dir() and any(layout.sets_dir.iterdir()))
        or (layout.manifests_dir.is_dir() and any(layout.manifests_dir.iterdir()))
    )
    if not used:
        shutil.rmtree(layout.state_dir, ignore_errors=True)
    return False


def undo_reserve(timeout_s: float) -> float:
    """Seconds of the budget kept for putting the previous set back."""
    return min(max(0.5, 0.2 * timeout_s), 5.0)


def _recover_and_pause(layout: Layout, control: ControlStore | None) -> RecoveryOutcome | None:
    outcome = recover(layout)
    if outcome is not None and control is not None:
        if outcome.needs_pause:
            control.pause(f"{outcome.message} ({outcome.reason or 'interrupted'})", by="recovery")
        control.record_rollback(
            str(layout.target),
            outcome.live_label or "",
            f"recovered:{outcome.outcome}",
            {"op": outcome.op},
        )
    return outcome


def recover_interrupted(
    target: Path, control: ControlStore | None = None
) -> RecoveryOutcome | None:
    """Finish or undo an interrupted rollback of `target`; what the daemon calls at start.

    Does nothing (returns None) when there is nothing to recover or when another
    process holds the target's lock (its rollback is not interrupted, it is running).
    """
    layout = Layout.for_target(target)
    if not layout.state_dir.is_dir():
        return None
    try:
        with exclusive_lock(layout.lock_path):
            return _recover_and_pause(layout, control)
    except LockedError:
        return None


def roll_back(
    request: RollbackRequest,
    *,
    control: ControlStore | None = None,
    alerts: Sequence[Alert] = (),
    store_lock: Path | None = None,
) -> RollbackResult:
    """Make `request.config_set` the live set of `request.target`, or explain why not."""
    start = time.monotonic()
    deadline = start + request.timeout_s
    layout = Layout.for_target(request.target)
    cs = request.config_set
    with ExitStack() as stack:
        recovered = None
        check_kind(request.target)  # a file, FIFO or device is never replaced, not even planned
        if not request.dry_run:  # a dry run creates nothing, not even a lock file
            if store_lock is not None:
                stack.enter_context(exclusive_lock(store_lock, what="a rollback"))
            created = not layout.state_dir.exists()
            layout.ensure_dirs()
            stack.enter_context(exclusive_lock(layout.lock_path, what="a rollback of this target"))
            if created:
                stack.push(lambda exc_type, _e, _tb: _drop_unused_state(layout, exc_type))
            recovered = _recover_and_pause(layout, control)
            if request.automatic and control is not None and control.pause_state().paused:
                raise PausedError(
                    "bisector is paused; the automatic rollback was not applied",
                    hint="inspect with `bisector status`, then `bisector resume`",
                )
        state = live_state(layout)
        live_files = read_live_files(layout)
        drift = tuple(detect_drift(layout)) if layout.state_dir.is_dir() else ()
        plan = make_plan(live_files, cs.files)

        def result(status: Status, **kw: Any) -> RollbackResult:
            return RollbackResult(
                status,
                request.target,
                cs.label,
                plan,
                drift,
                recovered=recovered,
                seconds=time.monotonic() - start,
                **kw,
            )

        if request.dry_run:  # nothing changes: what is live after it is what is live now
            return result("dry_run", live=_live_label(layout, state.kind, state.gen))
        if drift and not request.force:
            # File names come from whoever can write the live folder: a line break in one
            # must not add an `error:` or `hint:` line of its own.
            shown = ", ".join(one_line(p) for p in drift[:10]) + (
                f" and {len(drift) - 10} more" if len(drift) > 10 else ""
            )
            raise DriftError(
                f"live configs in {request.target} changed since bisector wrote them: {shown}",
                hint="keep those edits by committing them, or pass --force to overwrite them",
            )
        if plan.empty and state.kind == "managed" and not drift:
            log.info("rollback.unchanged", target=str(request.target), to=cs.label)
            return result("unchanged", live=cs.label, paused=_paused(control))
        before = _live_label(layout, state.kind, state.gen)
        outcome = _apply(layout, request, state.kind, state.gen, live_files, deadline, control)
        status, health, reason = outcome
        deliveries: tuple[Delivery, ...] = ()
        message: AlertMessage | None = None
        if status in ("restored", "kept") and health is not None:
            what = (
                "the previous configs were restored"
                if status == "restored"
                else "the new configs were kept"
            )
            paused = status == "restored" and request.on_failure == "alert_and_pause"
            text = (
                f"bisector: rollback of {request.target} to {cs.label} failed its health check "
                f"({reason}); {what}"
                + ("; bisector is paused until `bisector resume`" if paused else "")
            )
            message = AlertMessage(
                text=text,
                step="health_check",
                reason=reason or "",
                files=tuple(c.path for c in plan.changes),
            )
            deliveries = tuple(send_alert(alerts, message))
        if control is not None:
            control.record_rollback(
                str(request.target),
                cs.label,
                status,
                {"reason": reason, "plan": plan.to_json(), "set_id": cs.set_id},
            )
        paused = _paused(control)
        log.info("rollback.finished", target=str(request.target), to=cs.label, status=status)
        live = before if status == "restored" else cs.label
        return result(
            status,
            health=health,
            reason=reason,
            paused=paused,
            alerts=deliveries,
            alert=message,
            live=live,
        )


def _paused(control: ControlStore | None) -> bool:
    return control is not None and control.pause_state().paused


def _live_label(layout: Layout, kind: str, gen: str | None) -> str | None:
    """A name for the set live before this rollback (what an undo puts back)."""
    if kind == "absent":
        return None
    if kind == "managed" and gen is not None:
        manifest = read_manifest(layout, gen)
        return str(manifest.get("label")) if manifest else gen
    return "the live folder as it was before bisector"


def _apply(
    layout: Layout,
    request: RollbackRequest,
    live_kind: str,
    live_gen: str | None,
    live_files: dict[str, bytes],
    deadline: float,
    control: ControlStore | None,
) -> tuple[Status, HealthResult | None, str | None]:
    cs = request.config_set
    op = new_op_id()
    to_gen = gen_name(cs, op)
    adopting = live_kind in ("directory", "foreign")
    previous = ConfigSet("live folder before bisector", live_files) if adopting else None
    from_gen = gen_name(previous, op + "p") if previous is not None else live_gen
    intent = Intent(
        op=op,
        phase="apply",
        to_gen=to_gen,
        to_label=cs.label,
        from_gen=from_gen,
        health_check=bool(request.health_check),
        pause_on_failure=request.on_failure == "alert_and_pause",
        health_token=new_token() if request.health_check else None,
    )
    reserve = undo_reserve(request.timeout_s)
    with sigterm_stops_between_steps():
        try:
            write_intent(layout, intent, step="intent_written")
        except OSError as exc:  # a full disk or a folder it may not write: nothing changed yet
            raise disk_error(exc, f"write the rollback journal {layout.intent_path}") from exc
        try:
            if previous is not None and from_gen is not None:
                stage(layout, previous, from_gen, op + "p")
            stage(layout, cs, to_gen, op)
            if time.monotonic() > deadline - reserve:
                raise RollbackError(
                    f"the rollback timeout ({request.timeout_s:g}s) ran out while staging; nothing was changed",
                    hint="raise rollback.timeout or pass --timeout",
                )
            switch(layout, to_gen)
        except BaseException as exc:
            if live_state(layout).gen != to_gen:
                with shielded():
                    _abandon(layout, intent)
                if isinstance(exc, OSError):  # the switch's (staging words its own)
                    raise disk_error(exc, f"switch {layout.target}") from exc
                raise
            # Interrupted right after the rename: the new set is live; undo below.
        health: HealthResult | None = None
        reason: str | None = None
        if terminated():
            reason = "stopped by SIGTERM"
        elif request.health_check:
            health = run_health_check(
                request.health_check,
                cwd=request.health_cwd or Path.cwd(),
                budget_s=deadline - reserve - time.monotonic(),
                env={
                    "BISECTOR_ROLLBACK_TARGET": str(layout.target),
                    "BISECTOR_ROLLBACK_TO": cs.label,
                },
                should_stop=terminated,
                token=intent.health_token,
            )
            if not health.ok:
                reason = f"health check {health.reason}"
        with shielded():
            try:
                if reason is None:
                    write_intent(layout, with_phase(intent, "commit"), step="health_checked")
                    record_live(layout, to_gen)
                    clear_intent(layout)
                    collect_garbage(layout, keep={g for g in (to_gen, from_gen) if g})
                    return "applied", health, None
                interrupted = health is None or health.reason == "stopped by SIGTERM"
                if request.on_failure == "keep" and not interrupted:
                    record_live(layout, to_gen)
                    clear_intent(layout)
                    return "kept", health, reason
                if (
                    control is not None
                    and request.on_failure == "alert_and_pause"
                    and not interrupted
                ):
                    # Durable before the undo: a crash from here on still leaves bisector paused.
                    control.pause(f"rollback to {cs.label} failed: {reason}", by="rollback")
                undo = with_phase(intent, "undo", reason)
                write_intent(layout, undo, step="undo_intent_written")
                restore_previous(layout, undo)
                clear_intent(layout)
            except OSError as exc:  # a full disk beside the target: the switch is done
                raise unfinished_error(layout, intent, exc, reason) from exc
        if interrupted:
            raise ApplyInterrupted(
                "stopped by SIGTERM during the health check; the previous configs were put back",
                hint="run the rollback again",
            )
        return "restored", health, reason


def _abandon(layout: Layout, intent: Intent) -> None:
    """Before the switch: drop everything this apply staged; the live set never changed.

    A switch without RENAME_EXCHANGE that failed between its renames left the live folder
    displaced: it goes back first. If that fails too, the intent stays for recovery.
    """
    put_back_displaced(layout)
    discard_leftovers(layout)
    for gen in (intent.to_gen, intent.from_gen):
        # Only generations this apply created; a managed previous one stays.
        if gen is not None and (gen == intent.to_gen or gen.endswith(f"-{intent.op}p")):
            shutil.rmtree(layout.gen_dir(gen), ignore_errors=True)
            layout.manifest_path(gen).unlink(missing_ok=True)
    clear_intent(layout)
