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
from bisector.store.control import ControlStore
from rollback.entry import automatic_rollback


def may_roll_back(status: str | None) -> bool:
    """Only a found, verified culprit moves live configs (an inconclusive suspect never does)."""
    return status == Status.FOUND.value


def roll_back_to(repo: Path, cfg: Config, to_ref: str, control: ControlStore) -> dict[str, Any]:
    """Roll `rollback.target` back to the configs of `to_ref`; the result as JSON."""
    return automatic_rollback(
        repo, cfg, to_ref, control, setting="daemon.policy", instead="daemon.policy: report"
    ).to_json()
