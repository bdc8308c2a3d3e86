"""Which executor measures a run's trials: `local` (this machine) or `ray` (a cluster).

`choose_measurer` reads `execution.executor` (or `run --executor`) and returns how the
run opens its `Probe`, within the context it returns: the ray executor's connection to
the cluster, held for the run. Ray is an optional extra: it is imported only here, only
when chosen, so a local run pays nothing for it, and a missing install is one `error:`
line with the install hint before anything is written, as are a head nothing listens at
(Ray would retry it for minutes) and a trial shape the cluster cannot hold (entering the
context connects and checks it; the pipeline enters it before writing anything). The local executor builds and runs here, so what its builder needs here (the docker builder: a reachable daemon) is checked
now too; the ray executor's driver only computes environment keys and needs none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

from bisector.builders.registry import require_here
from bisector.config import Config
from bisector.errors import ConfigError

# The pipeline's `OpenMeasurer` (named generically: the pipeline imports this module).
M = TypeVar("M")

EXECUTORS = ("local", "ray")


@contextmanager
def choose_measurer(
    cfg: Config, executor: str | None, workers: int | None, default: M, *, builder: str
) -> Iterator[M]:
    """`default` for the local executor; the Ray measurer with K workers for `ray`,
    connected to the cluster until the context exits.

    :raises BisectorError: a bad choice, no Ray for `ray`, its head unreachable or too
        small for one trial, or (`local`) what `builder` needs on this machine missing
        (`require_here`: no Docker daemon reachable).
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
        yield default
        return
    try:
        import ray  # noqa: F401, PLC0415 (optional; imported only when chosen)
    except ImportError:
        raise ConfigError(
            "the ray executor needs Ray, which is not installed",
            hint="pip install 'bisector[ray]'",
        ) from None
    from bisector.executors.ray_measurer import open_ray_measurer  # noqa: PLC0415 (imports ray)
    from bisector.executors.ray_setup import session  # noqa: PLC0415 (imports ray)

    with session(cfg.execution.ray):
        yield cast("M", open_ray_measurer(workers or cfg.execution.workers))
