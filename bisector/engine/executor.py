"""Which executor measures a run's trials: `local` (this machine) or `ray` (a cluster).

`choose_measurer` reads `execution.executor` (or `run --executor`) and returns how the
run opens its `Probe`. Ray is an optional extra: it is imported only here, only when
chosen, so a local run pays nothing for it, and a missing install is one `error:` line
with the install hint before anything is written, as is a head nothing listens at (Ray
would retry it for minutes). The local executor builds and runs here, so what its builder needs here (the docker builder: a reachable daemon) is checked
now too; the ray executor's driver only computes environment keys and needs none of it.
"""

from __future__ import annotations

from typing import TypeVar, cast

from bisector.builders.registry import require_here
from bisector.config import Config
from bisector.errors import ConfigError

# The pipeline's `OpenMeasurer` (named generically: the pipeline imports this module).
M = TypeVar("M")

EXECUTORS = ("local", "ray")


def choose_measurer(
    cfg: Config, executor: str | None, workers: int | None, default: M, *, builder: str
) -> M:
    """`default` for the local executor; the Ray measurer with K workers for `ray`.

    :raises BisectorError: a bad choice, no Ray for `ray`, or (`local`) what `builder`
        needs on this machine missing (`require_here`: no Docker daemon reachable).
    """
    name = executor or cfg.execution.executor
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}", hint="use local or ray")
    if name == "local":
        if workers is not None and workers > 1:
            raise ConfigError(
                f"--workers {workers} needs the ray executor",
                hint="add --executor ray (or execution.executor: ray in bisector.yaml)",
            )
        require_here(builder)
        return default
    try:
        import ray  # noqa: F401, PLC0415 (optional; imported only when chosen)
    except ImportError:
        raise ConfigError(
            "the ray executor needs Ray, which is not installed",
            hint="pip install 'bisector[ray]'",
        ) from None
    from bisector.executors.ray_measurer import open_ray_measurer  # noqa: PLC0415 (imports ray)
    from bisector.executors.ray_setup import check_reachable  # noqa: PLC0415 (imports ray)

    check_reachable(cfg.execution.ray.address)  # before anything is written
    return cast("M", open_ray_measurer(workers or cfg.execution.workers))
