"""Release snapshots: config files and dependencies of a commit, stored by content.

The public surface is `snapshots.api` (take, list, show, diff, config_set,
attach_environment) and the typed records of `snapshots.manifest`.
"""

from snapshots.api import attach_environment, config_set, diff, list_snapshots, show, take
from snapshots.diff import SnapshotDiff
from snapshots.manifest import EnvironmentRecord, Manifest, ResolvedPackage, Runtime, Snapshot

__all__ = [
    "EnvironmentRecord",
    "Manifest",
    "ResolvedPackage",
    "Runtime",
    "Snapshot",
    "SnapshotDiff",
    "attach_environment",
    "config_set",
    "diff",
    "list_snapshots",
    "show",
    "take",
]
