"""One guard evaluation and what it does about it; and the loop of `bisector guard`.

Order of the checks on each evaluation:

1. Paused: a paused bisector guards nothing (no query, no action) until `bisector resume`.
2. Every check and the canary are judged (`evaluate`) and their states journaled.
3. A breach (or a failed canary): `on_breach: rollback` rolls `rollback.target` back to
   the target release through the rollback service (atomic, health check, timeout, the
   repository's store lock), then one alert with the values seen, then a pause; so a
   held breach rolls back once, however often the guard looks again.
   `on_breach: alert`: one alert per breach (not again until the check was ok).
4. An inconclusive canary: alert and pause, never promote.
5. Blind (a check without data): no action; after `blind_after` such evaluations in a
   row, one alert "guard is blind".

An alert that no webhook took (each one tried failed, after its retries; also the health
check's alert of the guard's rollback, sent by the rollback package) is journaled
and sent again first thing at every evaluation, paused or not, until one takes it; sending
it again acts on nothing (the breach it tells of was acted on when it was first sent).

The release rolled back to is `guard.rollback_to`, else the daemon's last known good,
else the newest-but-one release tag.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bisector.alerts import AlertMessage, delivered, send_alert
from bisector.config import Config
from bisector.errors import BisectorError, ConfigError, RollbackError
from bisector.gitrepo import GitRepo
from bisector.guard.evaluate import CheckOutcome, blind, breached, evaluate_all, inconclusive
from bisector.guard.prometheus import Prometheus
from bisector.guard.rules import wire
from bisector.log import get_logger
from bisector.releases import newest_but_one, still_named
from bisector.store.control import ControlStore, journal_path
from bisector.store.daemon_state import DaemonState
from bisector.store.guard_state import GuardMeta, GuardState
from rollback.entry import automatic_rollback, resolve_target, store_lock_path
from rollback.layout import Layout, read_live_record

log = get_logger("bisector.guard")

EXIT_OK = 0
EXIT_ACTED = 6  # breached (or a canary failed / was inconclusive) and acted
EXIT_BLIND = 7  # no data for at least one check: never a reason to act


@dataclass(frozen=True)
class Evaluation:
    outcome: str  # ok | breached | inconclusive | blind | paused
    checks: tuple[CheckOutcome, ...] = ()
    actions: tuple[str, ...] = ()
    at: float = field(default_factory=time.time)

    @property
    def exit_code(self) -> int:
        if self.outcome in ("breached", "inconclusive"):
            return EXIT_ACTED
        return EXIT_BLIND if self.outcome == "blind" else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "checks": [c.to_json() for c in self.checks],
            "actions": list(self.actions),
            "at": self.at,
        }


def _alerted_already(outcome: CheckOutcome, before: Any, state: GuardState) -> bool:
    """`on_breach: alert` alerted about this breach: it was not seen ok since the alert.

    Seen pending (a gap in the data) or blind (Prometheus restarting) in between, it is
    still the same breach, not a new one to alert about."""
    if before is None or not (before.last_action or "").startswith("alerted"):
        return False
    ok_at = state.last_ok(outcome.name)
    if ok_at is None:  # never ok since `ok_at` is journaled: the same state as then
        return bool(before.state == outcome.state)
    return before.action_at is not None and ok_at < before.action_at


def _values_text(outcomes: Sequence[CheckOutcome]) -> str:
    return "; ".join(f"{o.name}: {o.reason}" for o in outcomes)


class Guardian:
    """Evaluates `cfg.guard` against Prometheus and acts; state in the repository's journal."""

    def __init__(self, repo: Path, cfg: Config, *, clock: Callable[[], float] = time.time) -> None:
        if cfg.guard is None:
            raise ConfigError("bisector.yaml has no guard section", hint="see docs/config.md#guard")
        self.repo = repo.resolve()
        self.cfg = cfg
        self.guard = cfg.guard
        self.prom = Prometheus(cfg.guard.prometheus, cfg.guard.timeout)
        self.clock = clock
        self.store = self.repo / cfg.snapshots.store

    def evaluate(self) -> Evaluation:
        with (
            ControlStore(journal_path(self.repo, self.cfg.snapshots.store)) as control,
            GuardState(self.store) as state,
        ):
            resent = self._send_waiting(state)
            pause = control.pause_state()
            if pause.paused:
                state.set_meta(
                    GuardMeta(
                        **{**state.meta().__dict__, "last_eval": self.clock(), "outcome": "paused"}
                    )
                )
                log.info("guard.paused", reason=pause.reason)
                return Evaluation("paused", actions=(*resent, f"none: paused ({pause.reason})"))
            now = self.clock()
            outcomes = evaluate_all(self.prom, self.cfg, now)
            before = {row.name: row for row in state.checks()}
            for o in outcomes:
                state.record(o.name, o.state, o.value, o.reason)
            waiting = len(state.queued_alerts())
            evaluation = self._decide(outcomes, before, control, state, now)
            lost = tuple(
                f"alert undelivered: {m['reason']} (sent again at the next evaluation)"
                for _, m in state.queued_alerts()[waiting:]
            )
            if resent or lost:
                evaluation = replace(evaluation, actions=(*resent, *evaluation.actions, *lost))
            log.info("guard.evaluation", **evaluation.to_json())
            return evaluation

    # -- deciding and acting ------------------------------------------------------------

    def _decide(
        self,
        outcomes: list[CheckOutcome],
        before: dict[str, Any],
        control: ControlStore,
        state: GuardState,
        now: float,
    ) -> Evaluation:
        meta = state.meta()
        hit, unsure, dark = breached(outcomes), inconclusive(outcomes), blind(outcomes)
        actions: list[str] = []
        if dark:
            streak = meta.blind_streak + 1
            alerted = meta.blind_alerted
            if streak >= self.guard.blind_after and not alerted:
                self._alert(state, f"bisector guard is blind: {_values_text(dark)}", "blind", dark)
                alerted = True
                actions.append("alerted: blind")
            meta = GuardMeta(streak, alerted)
        else:
            meta = GuardMeta(0, False)
        if hit:
            actions += self._on_breach(hit, before, control, state)
            outcome = "breached"
        elif unsure:
            text = (
                f"bisector guard: canary inconclusive, not promoted; paused: {_values_text(unsure)}"
            )
            self._alert(state, text, "canary inconclusive", unsure)
            control.pause(f"guard: canary inconclusive ({unsure[0].reason})", by="guard")
            for o in unsure:
                state.record_action(o.name, "alerted+paused")
            actions.append("alerted+paused: canary inconclusive")
            outcome = "inconclusive"
        else:
            outcome = "blind" if dark else "ok"
        state.set_meta(GuardMeta(meta.blind_streak, meta.blind_alerted, now, outcome))
        return Evaluation(outcome, tuple(outcomes), tuple(actions), now)

    def _on_breach(
        self,
        hit: list[CheckOutcome],
        before: dict[str, Any],
        control: ControlStore,
        state: GuardState,
    ) -> list[str]:
        names = ", ".join(o.name for o in hit)
        if self.guard.on_breach == "alert":
            fresh = [o for o in hit if not _alerted_already(o, before.get(o.name), state)]
            if not fresh:
                return ["none: already alerted"]
            self._alert(
                state,
                f"bisector guard: {', '.join(o.name for o in fresh)} breached: {_values_text(fresh)}",
                "breach",
                fresh,
            )
            for o in fresh:
                state.record_action(o.name, "alerted")
            return ["alerted"]
        action, what = self._roll_back(control, state)
        self._alert(
            state,
            f"bisector guard: {names} breached; {what}; bisector is paused until `bisector resume`: "
            f"{_values_text(hit)}",
            "breach",
            hit,
        )
        control.pause(f"guard: {names} breached; {what}", by="guard")
        for o in hit:
            state.record_action(o.name, f"{action}+alerted+paused")
        return [action, "alerted", "paused"]

    def _roll_back(self, control: ControlStore, state: GuardState) -> tuple[str, str]:
        """(action for the journal, words for the alert); errors become words, not exceptions.

        With `bisect_after_rollback`, an applied rollback also journals the request the
        daemon bisects on: (the ref rolled back to, the set that was live before)."""
        try:
            ref = self.rollback_ref()
            live = self._live_label()
            result = automatic_rollback(
                self.repo,
                self.cfg,
                ref,
                control,
                setting="guard.on_breach",
                instead="guard.on_breach: alert",
                store_lock=store_lock_path(self.repo, self.cfg),
            )
        except BisectorError as exc:
            log.error("guard.rollback_failed", error=exc.message)
            return "rollback_failed", f"the rollback failed: {exc.message}"
        if result.alert is not None and not delivered(result.alerts):
            self._keep(state, result.alert)  # the health check's, sent by the rollback
        status = result.status
        if status in ("applied", "unchanged"):
            what = f"rolled back to {ref} ({status})"
            if self.guard.bisect_after_rollback:
                state.request_bisect(ref, live)
                what += f"; the daemon bisects {ref}..{live or 'the newest release'} next"
            return f"rolled_back:{ref}", what
        return (
            f"rollback_{status}:{ref}",
            f"the rollback to {ref} ended {status}: {result.reason or ''}".rstrip(": "),
        )

    def _live_label(self) -> str | None:
        """The label of the set live now (what bisector last wrote), if any."""
        target = resolve_target(self.repo, self.cfg, None)
        if target is None:
            return None
        layout = Layout.for_target(target)
        record = read_live_record(layout) if layout.state_dir.is_dir() else None
        label = None if record is None else record.get("label")
        return str(label) if label else None

    def rollback_ref(self) -> str:
        """`guard.rollback_to`, else the daemon's last known good, else the newest-but-one tag."""
        if self.guard.rollback_to:
            return self.guard.rollback_to
        with DaemonState(self.store) as daemon:
            good = daemon.last_good()
        with GitRepo(self.repo) as git:
            if good is not None:  # by a name that still means its commit
                return still_named(git, good).ref
            # The release before the newest, by ancestry.
            ref = newest_but_one(git, git.resolve("HEAD"))
        if ref is None:
            raise RollbackError(
                "no release to roll back to (fewer than two release tags reachable from HEAD)",
                hint="set guard.rollback_to",
            )
        return ref

    def _alert(
        self, state: GuardState, text: str, reason: str, outcomes: Sequence[CheckOutcome]
    ) -> None:
        """Send one alert; one that no webhook took is journaled for the next evaluation."""
        values = json.dumps({o.name: {"state": o.state, "value": wire(o.value)} for o in outcomes})
        message = AlertMessage(text=text, step="guard", reason=reason, extra={"checks": values})
        if not delivered(send_alert(self.cfg.daemon.alerts, message)):
            self._keep(state, message)

    def _keep(self, state: GuardState, message: AlertMessage) -> None:
        """An alert no webhook took, journaled for the next evaluation (`_send_waiting`)."""
        log.error("guard.alert.undelivered", reason=message.reason, retry="next evaluation")
        state.queue_alert(message.record())

    def _send_waiting(self, state: GuardState) -> tuple[str, ...]:
        """The alerts no webhook took before, oldest first, until one is not taken again
        (the webhook still down: the rest wait too, rather than each waiting its timeout)."""
        actions: list[str] = []
        waiting = state.queued_alerts()
        for n, (alert_id, m) in enumerate(waiting):
            # One queued by an older version has no step: the guard's.
            message = AlertMessage.from_record(m, step="guard")
            if not delivered(send_alert(self.cfg.daemon.alerts, message)):
                log.error(
                    "guard.alert.undelivered", reason=message.reason, waiting=len(waiting) - n
                )
                actions.append(f"alert still undelivered: {len(waiting) - n} waiting")
                break
            state.drop_alert(alert_id)
            log.info("guard.alert.resent", reason=message.reason)
            actions.append(f"alert sent again: {message.reason}")
        return tuple(actions)


def run_guard(
    repo: Path,
    cfg: Config,
    *,
    once: bool,
    on_evaluation: Callable[[Evaluation], None] | None = None,
) -> int:
    """`--once`: one evaluation, its exit code. Else evaluate every `interval` until SIGTERM."""
    guardian = Guardian(repo, cfg)
    if once:
        evaluation = guardian.evaluate()
        if on_evaluation is not None:
            on_evaluation(evaluation)
        return evaluation.exit_code
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        while not stop.is_set():
            started = time.monotonic()
            evaluation = guardian.evaluate()
            if on_evaluation is not None:
                on_evaluation(evaluation)
            stop.wait(max(0.0, guardian.guard.interval - (time.monotonic() - started)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("guard.stopped")
    return EXIT_OK
