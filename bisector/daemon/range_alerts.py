"""A range's one alert, and the alerts still owed, sent again before anything else.

An alert that no webhook took leaves its range `acted`. Every cycle (paused or not)
sends those first, oldest first, until one is refused again, before it fetches or
measures: the branch head moving on to a new range must not strand an older range's
alert, and the rest wait rather than each waiting its timeouts.

A culprit is alerted once. A range whose every culprit (each regression step of its
run) an alert already delivered named is not alerted again, unless its policy tried to
move the live configs (news the on-call has not had); one naming a culprit not alerted
yet is, saying which culprits are new. When a range's alert is delivered, the older
ranges still owing an alert for culprits it named (all of theirs) are marked
`superseded` and never sent: the on-call gets the newer alert (the newer range, what the
policy did on it), not a stale one after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from bisector.alerts import AlertMessage, Delivery, delivered
from bisector.config import Alert, Config
from bisector.daemon.alert_text import range_alert
from bisector.log import get_logger
from bisector.store.daemon_state import DaemonState, Phase, RangeRow

log = get_logger("bisector.daemon")

Send = Callable[[Sequence[Alert], AlertMessage], list[Delivery]]


class RangeAlerts:
    def __init__(self, state: DaemonState, cfg: Config, send: Send) -> None:
        self.state, self.cfg, self.send = state, cfg, send

    def close(self, row: RangeRow, to_ref: str, *, retry: str) -> str:
        """The range's alert, then the range `done`; `acted` when no webhook took the alert,
        so the next attempt (`retry`) sends it again without acting or measuring again.
        Returns `sent` or `undelivered`."""
        outcome = self._post(row, to_ref)
        if outcome == "undelivered":
            log.error("daemon.alert.undelivered", run_id=row.run_id, retry=retry)
        phase: Phase = "acted" if outcome == "undelivered" else "done"
        alert = "undelivered" if outcome == "undelivered" else "sent"
        self.state.set_range(
            row.good_sha, row.bad_sha, phase, detail={**row.detail, "alert": alert}
        )
        if outcome == "posted" and row.culprits:
            stale = self.state.supersede_owed(row.culprits, row.good_sha, row.bad_sha, row.run_id)
            if stale:
                log.info("daemon.alert.superseded", run_ids=stale, by=row.run_id)
        return alert

    def send_owed(self, owed: Sequence[RangeRow]) -> dict[str, Any]:
        """The alerts of `owed` (`DaemonState.owed_alerts`), oldest first, until one is not
        taken again; nothing measured or acted on. `{"alerts": {run id: sent |
        undelivered}}`, or {} if none."""
        alerts: dict[str, str] = {}
        for row in owed:
            to_ref = str(row.detail.get("good_ref") or row.good_sha)
            alerts[str(row.run_id)] = alert = self.close(row, to_ref, retry="next cycle")
            if alert == "undelivered":
                break
        return {"alerts": alerts} if alerts else {}

    def _post(self, row: RangeRow, to_ref: str) -> Literal["posted", "duplicate", "undelivered"]:
        """One alert per range: the finding, the policy's action, the report's link;
        `undelivered` when webhooks were tried and none took it."""
        result = row.detail.get("rollback")
        tried = result is not None and result.get("status") not in ("not_rolled_back",)
        told = self.state.alerted_culprits() if row.culprits else set()
        if row.culprits and told.issuperset(row.culprits) and not tried:
            log.info("daemon.alert.duplicate", culprits=list(row.culprits))
            return "duplicate"
        message = range_alert(row, self.cfg, to_ref, told=told)
        sent = delivered(self.send(self.cfg.daemon.alerts, message))
        return "posted" if sent else "undelivered"
