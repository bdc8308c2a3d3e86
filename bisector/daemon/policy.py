"""The daemon's `rollback` policy: put the last known good configs back, automatically.

Goes through the rollback package (its own timeout, health check, alert-and-pause); the
caller already holds the repository's store lock, so none is taken here. It acts only on
a run whose status is `found` (every culprit verified, `may_roll_back`); the cycle alerts
"not rolled back: unverified" on anything else and leaves the live configs alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bisector.config import Config
from bisector.core.types import Status
from bisector.errors import RollbackError
from bisector.store.control import ControlStore
from rollback.entry import resolve_target
from rollback.service import RollbackRequest, roll_back
from rollback.source import resolve_source


def may_roll_back(status: str | None) -> bool:
    """Only a found, verified culprit moves live configs (an inconclusive suspect never does)."""
    return status == Status.FOUND.value


def roll_back_to(repo: Path, cfg: Config, to_ref: str, control: ControlStore) -> dict[str, Any]:
    """Roll `rollback.target` back to the configs of `to_ref`; the result as JSON."""
    target = resolve_target(repo, cfg, None)
    if target is None:
        raise RollbackError(
            "daemon.policy is rollback but rollback.target is not set",
            hint="set rollback.target in bisector.yaml, or daemon.policy: report",
        )
    hc = cfg.rollback.health_check
    request = RollbackRequest(
        target=target,
        config_set=resolve_source(repo, cfg).config_set(to_ref),
        timeout_s=cfg.rollback.timeout,
        health_check=tuple(hc) if hc else None,
        health_cwd=repo,
        on_failure=cfg.rollback.on_failure,
        automatic=True,
    )
    return roll_back(request, control=control, alerts=cfg.daemon.alerts).to_json()
