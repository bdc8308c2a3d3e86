"""What a rollback is asked to do (`RollbackRequest`) and what it reports (`RollbackResult`).

`RollbackResult.to_json` is the `--json` contract of `bisector rollback` (docs/rollback.md,
"JSON"); `exit_code` is its exit status. Plain data: no disk, no process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bisector.alerts import AlertMessage, Delivery
from rollback.configset import ConfigSet
from rollback.health import HealthResult
from rollback.journal import RecoveryOutcome
from rollback.plan import Plan

Status = Literal["dry_run", "unchanged", "applied", "restored", "kept"]
OnFailure = Literal["alert_and_pause", "keep"]

EXIT_HEALTH_FAILED = 5  # the rollback ran but the health check failed (see the README)


@dataclass(frozen=True)
class RollbackRequest:
    target: Path
    config_set: ConfigSet
    timeout_s: float = 30.0
    health_check: tuple[str, ...] | None = None
    health_cwd: Path | None = None
    on_failure: OnFailure = "alert_and_pause"
    force: bool = False
    dry_run: bool = False
    automatic: bool = False  # the daemon's policy: refused while paused


@dataclass(frozen=True)
class RollbackResult:
    status: Status
    target: Path
    label: str
    plan: Plan
    drift: tuple[str, ...] = ()
    health: HealthResult | None = None
    reason: str | None = None
    paused: bool = False
    alerts: tuple[Delivery, ...] = ()
    # The health check's alert: a caller keeps it to send again when no webhook took it.
    alert: AlertMessage | None = None
    recovered: RecoveryOutcome | None = None
    seconds: float = 0.0
    live: str | None = None  # the label of the set services read after this operation
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_HEALTH_FAILED if self.status in ("restored", "kept") else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "target": str(self.target),
            "to": self.label,
            "plan": self.plan.to_json(),
            "drift": list(self.drift),
            "health": None
            if self.health is None
            else {
                "ok": self.health.ok,
                "reason": self.health.reason,
                "seconds": round(self.health.seconds, 3),
                "output": None if self.health.ok else self.health.output_tail,
            },
            "reason": self.reason,
            "paused": self.paused,
            "alerts": [{"index": d.index, "ok": d.ok, "detail": d.detail} for d in self.alerts],
            "recovered": None if self.recovered is None else self.recovered.outcome,
            "live": self.live,
            "wall_s": round(self.seconds, 3),
        }
