"""Connecting to Ray and shaping a trial's task: what `ray_measurer` does before any trial."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import ray

import bisector
from bisector.config_execution import RayOptions
from bisector.errors import BisectorError
from bisector.executors.node_types import NodeType, run_node_types


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


def trial_shapes(opts: RayOptions) -> dict[NodeType, dict[str, Any]]:
    """The task options of a trial on each node type of the run, each one the cluster
    can hold (`check_feasible`). Needs the connection."""
    cluster: dict[str, float] = cast("Any", ray).cluster_resources()  # untyped in ray
    shape = opts.resources_per_trial
    types = run_node_types(opts.node_type, opts.node_types, cluster, shape)
    shapes = {t: ray_options(dict(shape), t) for t in types}
    for options in shapes.values():
        check_feasible(options)
    return shapes


@contextmanager
def session(opts: RayOptions) -> Iterator[None]:
    """Connected to the cluster for one run, its trial shape found feasible on entry,
    before the run writes anything (a refusal must leave the disk as it was);
    disconnected on exit when this call connected. `RayMeasurer` uses the connection."""
    check_reachable(opts.address)
    # Ray's driver prints the cluster's error messages ("a worker died ...") on stdout,
    # which is the --json document's: they go to stderr while we hold the connection.
    stdout, sys.stdout = sys.stdout, sys.stderr
    owns = False
    try:
        owns = connect(opts.address)
        trial_shapes(opts)
        yield
    finally:
        if owns:
            ray.shutdown()
        sys.stdout = stdout


REACH_TIMEOUT_S = 5.0
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def check_reachable(address: str) -> None:
    """Refuse a head nothing listens at: `ray.init` would retry it for minutes, silently."""
    if address in ("local", "auto"):
        return  # started here, or found by Ray from this machine's own cluster
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    # Ray dials this machine's own address for a loopback one: probe what it will dial.
    node_ip = cast("Any", ray).util.get_node_ip_address  # untyped in ray
    client = address.startswith("ray://")  # Ray Client dials the host as written
    dialed: str = node_ip() if host in _LOOPBACK and not client else host
    try:
        socket.create_connection((dialed, int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        via = "" if dialed == host else f", which Ray dials as {dialed}:{port}"
        raise BisectorError(
            f"cannot reach the Ray head at {address} (execution.ray.address{via}): "
            f"{exc.strerror or exc}",
            hint="start the cluster (`ray start --head`) or set execution.ray.address to its "
            "head's HOST:PORT",
        ) from None


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
