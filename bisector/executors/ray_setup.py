"""Connecting to Ray and shaping a trial's task: what `ray_measurer` does before any trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import ray

import bisector
from bisector.errors import BisectorError


def ray_options(resources: dict[str, float], node_type: str | None) -> dict[str, Any]:
    opts: dict[str, Any] = {"max_retries": 0}
    custom: dict[str, float] = {}
    for name, amount in resources.items():
        if name in ("num_cpus", "num_gpus", "memory"):
            opts[name] = amount
        else:
            custom[name] = amount
    if node_type:
        custom[node_type] = max(custom.get(node_type, 0.0), 0.01)
    if custom:
        opts["resources"] = custom
    return opts


def check_feasible(options: dict[str, Any]) -> None:
    """Refuse a trial shape the cluster has no room for at all (Ray would wait forever)."""
    total: dict[str, float] = cast("Any", ray).cluster_resources()  # untyped in ray
    wanted = {"CPU": options.get("num_cpus", 1), "GPU": options.get("num_gpus", 0)}
    wanted |= {"memory": options.get("memory", 0), **options.get("resources", {})}
    short = [
        f"{k} {v:g} (cluster: {total.get(k, 0):g})"
        for k, v in wanted.items()
        if v and total.get(k, 0) < v
    ]
    if short:
        raise BisectorError(
            "the Ray cluster cannot run one trial: it needs " + ", ".join(short),
            hint="lower execution.ray.resources_per_trial or add nodes with these resources",
        )


def connect(address: str) -> bool:
    """Connect to (or start) Ray; True when this call did, so `close` disconnects."""
    if ray.is_initialized():
        return False
    package = str(Path(bisector.__file__).parent)
    ray.init(
        address=None if address == "local" else address,
        # The code travels with the job: workers need not share our filesystem.
        runtime_env={"py_modules": [package], "excludes": ["__pycache__"]},
        log_to_driver=False,
        include_dashboard=False if address == "local" else None,
        namespace="bisector",
    )
    return True
