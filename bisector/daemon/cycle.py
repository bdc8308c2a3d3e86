"""One daemon cycle: fetch, snapshot new releases, measure the head, bisect, act, alert.

`run_cycle` is what the scheduler calls (by its import path, with plain kwargs). The
orchestration (`Cycle`) works over injected seams (bisect, alert, roll back, snapshot,
fetch), so tests can replace exactly one of them. Per (last good, head) range the cycle
records how far it got (bisecting → bisected → acted → done) before the next step, so a
cycle killed anywhere is finished by the next one without a second rollback or alert;
the one alert says what was found and what the policy did (`alert_text`). Every cycle
first sends again the alerts no webhook took (`range_alerts`); a paused one does nothing
else.

The last known good commit starts as the newest-but-one release tag reachable from the
head: the first cycle checks the newest release and everything after it. A head that
measures fine becomes the new last known good.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import bisector.daemon.stop as stop
from bisector.alerts import AlertMessage, Delivery, send_alert
from bisector.config import Alert, Config, load_config
from bisector.core.types import Commit, Status, Tag
from bisector.daemon.alert_text import culprits_of, finding_text
from bisector.daemon.benchcheck import check_range
from bisector.daemon.policy import may_roll_back, roll_back_to
from bisector.daemon.range_alerts import RangeAlerts
from bisector.engine.pipeline import RunOutcome, RunRequest, run_bisection
from bisector.errors import BisectorError, GitError, RefError, RollbackError
from bisector.gitrepo import GitRepo
from bisector.log import get_logger
from bisector.ports import Progress, ProgressEvent, Warned
from bisector.releases import (
    initial_last_good,
    label_of,
    release_tags,
    still_below,
    still_named,
)
from bisector.store.control import ControlStore
from bisector.store.daemon_state import DaemonState, LastGood, Phase, RangeRow
from bisector.store.runlock import RunLockedError, run_lock
from rollback.entry import recover_for, rollback_lock_path
from rollback.lock import LockedError, exclusive_lock
from snapshots import api as snap_api

log = get_logger("bisector.daemon")

# Held while a cycle runs; the daemon's shutdown waits on it.
RUNNING = threading.Lock()


def _take_snapshots(repo: Path, cfg: Config, refs: list[str]) -> None:

    snap_api.take(repo, cfg, refs)


def _fetch(repo: Path, remote: str) -> None:
    done = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "fetch",
            "--quiet",
            "--tags",
            "--prune",
            "--end-of-options",
            remote,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise GitError(
            f"git fetch {remote} failed: {tail}", hint="check daemon.remote and the credentials"
        )


@dataclass(frozen=True)
class Seams:
    """The cycle's outside world; each is replaceable in tests."""

    bisect: Callable[[RunRequest, Progress], RunOutcome] = run_bisection
    alert: Callable[[Sequence[Alert], AlertMessage], list[Delivery]] = send_alert
    rollback: Callable[[Path, Config, str, ControlStore], dict[str, Any]] = roll_back_to
    snapshot: Callable[[Path, Config, list[str]], None] = _take_snapshots
    fetch: Callable[[Path, str], None] = _fetch


@dataclass(frozen=True)
class CycleResult:
    outcome: str  # one of bisector.daemon.metrics.OUTCOMES
    head: str | None = None
    last_good: str | None = None
    new_tags: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "head": self.head,
            "last_good": self.last_good,
            "new_tags": list(self.new_tags),
            **self.detail,
        }


class Cycle:
    def __init__(
        self,
        repo: Path,
        config: Path | None,
        cfg: Config,
        state: DaemonState,
        control: ControlStore,
        seams: Seams,
    ) -> None:
        self.repo, self.config, self.cfg = repo, config, cfg
        self.state, self.control, self.seams = state, control, seams
        # Rollbacks recorded so far: one made while this cycle bisects (an operator's
        # emergency rollback) must not be rolled over by the policy afterwards.
        self.rollbacks_at_start = control.rollback_generation()
        self.alerts = RangeAlerts(state, cfg, seams.alert)

    def run(self) -> CycleResult:
        # What is owed first, paused or not: a pause stops acting, not telling, and a head
        # that moved on must not strand an older range's alert (`range_alerts`).
        owed_rows = self.state.owed_alerts()
        owed = self.alerts.send_owed(owed_rows)
        pause = self.control.pause_state()
        if pause.paused:
            log.info("daemon.paused", reason=pause.reason, since=pause.since, by=pause.by)
            return CycleResult("paused", detail={"reason": pause.reason, **owed})
        d = self.cfg.daemon
        if d.remote:
            stop.check()
            self.seams.fetch(self.repo, d.remote)
        with GitRepo(self.repo) as git:
            tags = release_tags(git)
            new_tags = self._snapshot_new_tags(tags)
            head = self._branch_head(git)
            last_good = self.state.last_good()
            if last_good is not None and not still_below(git, last_good, head):
                last_good = None
            if last_good is not None:  # its tag deleted or moved since: name the commit
                last_good = still_named(git, last_good)
            if last_good is None:
                last_good = initial_last_good(git, head, tags)
                if last_good is None:
                    log.warning(
                        "daemon.no_baseline", head=head.sha, hint="tag a release below the head"
                    )
                    return CycleResult("no_baseline", head.sha, None, new_tags, owed)
                self.state.set_last_good(last_good.sha, last_good.ref)
                log.info("daemon.last_good.initial", ref=last_good.ref, commit=last_good.sha)
            head_label = label_of(git, head)
        lg = last_good

        def result(outcome: str, **detail: Any) -> CycleResult:
            return CycleResult(outcome, head.sha, lg.sha, new_tags, {**owed, **detail})

        if last_good.sha == head.sha:
            log.info("daemon.up_to_date", head=head.sha)
            return result("up_to_date")
        row = self.state.range(last_good.sha, head.sha)
        key = (last_good.sha, head.sha)
        was_owed = next((r for r in owed_rows if (r.good_sha, r.bad_sha) == key), None)
        if row is not None and row.phase == "done" and was_owed is None:
            log.info("daemon.already_handled", good=last_good.sha, bad=head.sha, run_id=row.run_id)
            return result("already_handled", run_id=row.run_id)
        if row is None or row.phase == "bisecting":
            row = self.bisect_range(last_good, head, head_label)
            if row.phase == "done":  # the head is fine
                return result("fine", run_id=row.run_id)
        if was_owed is None:
            rollback, alert = self._act(row, last_good)
            again = False
        else:  # its alert went with the owed ones above, or waits behind one refused
            rollback, alert = row.detail.get("rollback"), row.detail.get("alert", "undelivered")
            # Sent again: not a new regression; one a kill cut off is, once first tried.
            again = "alert" in was_owed.detail or str(row.run_id) not in owed.get("alerts", {})
        return result(
            "already_handled" if again else "regression",
            run_id=row.run_id,
            status=row.status,
            culprit=row.culprit,
            rollback=rollback,
            alert=alert,
        )

    def _branch_head(self, git: GitRepo) -> Commit:
        """The head of `daemon.branch` (on `daemon.remote`, when set): an unknown one names
        the key to fix, not only git's ref (the cycle's error is all the operator sees)."""
        d = self.cfg.daemon
        ref = f"{d.remote}/{d.branch}" if d.remote else d.branch
        try:
            return git.resolve(ref)
        except RefError as exc:
            raise RefError(
                f"daemon.branch {d.branch!r}: {exc.message}",
                hint="set daemon.branch in bisector.yaml to the branch the daemon watches"
                + (f" on {d.remote}" if d.remote else ""),
            ) from exc

    def _snapshot_new_tags(self, tags: Sequence[Tag]) -> tuple[str, ...]:
        known = self.state.snapshotted_tags()
        new = {t.name: t.sha for t in tags if known.get(t.name) != t.sha}
        if new:
            stop.check()
            self.seams.snapshot(self.repo, self.cfg, list(new))
            self.state.record_tags(new)
            log.info("daemon.snapshots", tags=list(new))
        return tuple(new)

    def bisect_range(
        self,
        last_good: LastGood,
        head: Commit,
        head_label: str,
        *,
        moves_last_good: bool = True,
        on_fine: Callable[[RangeRow], None] | None = None,
    ) -> RangeRow:
        """Bisect (last good, head) and journal the range; `on_fine` gets the range of a
        head that is fine before it is journaled `done` (what it owes then survives a kill)."""
        good, bad = last_good.sha, head.sha
        # As `run` would refuse it, before the range is recorded: a config problem.
        check_range(self.repo, self.cfg, last_good, head, head_label)
        self.state.set_range(good, bad, "bisecting")
        log.info("daemon.measure", good=last_good.ref, bad=head_label)

        def progress(event: ProgressEvent) -> None:
            # The daemon has no terminal: a warning the CLI would print goes to its log.
            if isinstance(event, Warned):
                log.warning("daemon.warning", message=event.message)
            stop.check()

        request = RunRequest(good=last_good.ref, bad=head.sha, repo=self.repo, config=self.config)
        doc = self.seams.bisect(request, progress).document
        status = doc.status
        if status is Status.NOT_REPRODUCED:
            detail = {"report": doc.report, "good_ref": last_good.ref, "bad_ref": head_label}
            if on_fine is not None:
                on_fine(RangeRow(good, bad, "done", doc.run_id, status.value, None, detail))
            if moves_last_good:
                self.state.set_last_good(head.sha, head_label)
            self.state.set_range(
                good, bad, "done", run_id=doc.run_id, status=status.value, detail=detail
            )
            log.info("daemon.head_fine", head=head_label, run_id=doc.run_id)
            return self.state.range(good, bad) or RangeRow(good, bad, "done", None, None, None, {})
        culprit = doc.culprit.commit if doc.culprit else None
        summary = {
            "text": finding_text(doc, last_good.ref, head_label),
            "report": doc.report,
            "good_ref": last_good.ref,
            "bad_ref": head_label,
            "culprits": culprits_of(doc),
        }
        self.state.set_range(
            good,
            bad,
            "bisected",
            run_id=doc.run_id,
            status=status.value,
            culprit=culprit,
            detail=summary,
        )
        log.warning(
            "daemon.regression",
            status=status.value,
            culprit=culprit,
            run_id=doc.run_id,
            report=doc.report,
        )
        row = self.state.range(good, bad)
        assert row is not None
        return row

    def _act(self, row: RangeRow, last_good: LastGood) -> tuple[dict[str, Any] | None, str]:
        """The policy, then one alert naming what was found and what the policy did; the
        policy's result and the alert's (`sent`, `undelivered`: no webhook took it).

        Journaled in between (`acted`, with the policy's result), so a cycle killed after
        acting alerts without acting twice; a range left `alerted` by an older daemon
        (which alerted before acting) is acted on without a second alert. An alert no
        webhook took leaves the range `acted`: the next cycle sends it again.
        """
        alert = "sent"
        result: dict[str, Any] | None = row.detail.get("rollback")
        if row.phase in ("bisected", "alerted"):
            result = self._apply_policy(row, last_good)
            detail = {**row.detail, "rollback": result}
            phase: Phase = "done" if row.phase == "alerted" else "acted"
            self.state.set_range(row.good_sha, row.bad_sha, phase, detail=detail)
            row = replace(row, phase=phase, detail=detail)
        if row.phase == "acted":
            alert = self.alerts.close(row, last_good.ref, retry="next cycle")
        return result, alert

    def _apply_policy(self, row: RangeRow, last_good: LastGood) -> dict[str, Any] | None:
        if self.cfg.daemon.policy != "rollback":
            return None
        if not may_roll_back(row.status):
            # Only a verified culprit moves the live configs; anything else is for a human.
            log.warning(
                "daemon.rollback.skipped", to=last_good.ref, status=row.status, reason="unverified"
            )
            return {"status": "not_rolled_back", "reason": "unverified"}
        try:
            result = self._roll_back(last_good.ref)
            log.info("daemon.rollback", to=last_good.ref, status=result.get("status"))
        except BisectorError as exc:
            log.error("daemon.rollback.refused", to=last_good.ref, reason=exc.message)
            result = {"status": "refused", "reason": exc.message, "to": last_good.ref}
        return result

    def _roll_back(self, to_ref: str) -> dict[str, Any]:
        """The policy's rollback, under the rollback lock (held only for the swap), unless
        a rollback was made since this cycle started: then refused (logged and alerted)."""
        with exclusive_lock(rollback_lock_path(self.repo, self.cfg), what="a rollback"):
            if self.control.rollback_generation() != self.rollbacks_at_start:
                last = self.control.last_rollback()
                made = f" ({last.status} to {last.label} at {last.at})" if last is not None else ""
                raise RollbackError(
                    f"a rollback was made while this cycle ran{made}; not rolling back over it",
                    hint="inspect with `bisector status`",
                )
            return self.seams.rollback(self.repo, self.cfg, to_ref, self.control)


def execute(repo: Path, config: Path | None, seams: Seams = Seams()) -> CycleResult:
    """Run one cycle under the repository's store lock; its outcome is journaled."""
    repo = repo.resolve()
    cfg = load_config(repo, config)
    store = repo / cfg.snapshots.store
    with (
        RUNNING,
        DaemonState(store) as state,
        ControlStore.for_repo(repo, cfg.snapshots.store) as control,
    ):
        cycle_id, interrupted = state.begin_cycle()
        if interrupted:
            log.warning("daemon.cycle.resuming", interrupted=[c.id for c in interrupted])
        log.info("daemon.cycle.start", cycle=cycle_id)
        status = "finished"
        try:
            # The run lock, not the rollback lock: an emergency rollback goes through
            # while this cycle bisects for hours (the cycle notices it, see `_roll_back`).
            with run_lock(store, what="a bisection"):
                recover_for(repo, cfg, control)
                result = Cycle(repo, config, cfg, state, control, seams).run()
        except (LockedError, RunLockedError) as exc:
            log.warning("daemon.busy", reason=exc.message)
            result = CycleResult("busy", detail={"reason": exc.message})
        except stop.Abandoned:
            log.warning("daemon.cycle.abandoned", cycle=cycle_id)
            status, result = "abandoned", CycleResult("abandoned")
        except BisectorError as exc:
            log.error("daemon.cycle.error", error=exc.message, hint=exc.hint)
            result = CycleResult("error", detail={"error": exc.message})
        except Exception as exc:
            log.exception("daemon.cycle.failed", error=type(exc).__name__)
            result = CycleResult("error", detail={"error": f"internal error: {type(exc).__name__}"})
        state.finish_cycle(cycle_id, status, result.outcome, result.to_json())
    log.info("daemon.cycle.end", cycle=cycle_id, **result.to_json())
    return result


def run_cycle(repo: str, config: str | None = None) -> dict[str, Any]:
    """The scheduler's job ("bisector.daemon.cycle:run_cycle"); plain arguments only."""
    return execute(Path(repo), Path(config) if config else None).to_json()
