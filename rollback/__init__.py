"""Atomic config rollback: plan, apply, journal, recovery, health check, alert-and-pause.

See `rollback.layout` for the on-disk layout services read from, and
`rollback.service.roll_back` for the whole operation.
"""

from rollback.configset import ConfigSet
from rollback.journal import RecoveryOutcome
from rollback.plan import FileChange, KeyChange, Plan, make_plan
from rollback.request import EXIT_HEALTH_FAILED, RollbackRequest, RollbackResult
from rollback.service import DriftError, recover_interrupted, roll_back
from rollback.source import ConfigSource, GitConfigSource, resolve_source

__all__ = [
    "EXIT_HEALTH_FAILED",
    "ConfigSet",
    "ConfigSource",
    "DriftError",
    "FileChange",
    "GitConfigSource",
    "KeyChange",
    "Plan",
    "RecoveryOutcome",
    "RollbackRequest",
    "RollbackResult",
    "make_plan",
    "recover_interrupted",
    "resolve_source",
    "roll_back",
]
