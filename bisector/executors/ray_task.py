"""What runs on a Ray worker for one trial: unpack, build or reuse the environment, measure.

`run_trial_task(spec)` is plain Python; `ray_measurer` wraps it with `ray.remote`. The
checkout arrives as a tar archive of the commit (`archive.py`), not from a shared
filesystem, and is unpacked once per node under `cache_dir/checkouts/<sha>`
(`archive.unpack`: symlinks leading out of the checkout are left out, and the reason of a
trial that fails names them). The environment comes from the configured builder with
`cache_dir/store` as its store, so a venv (or a docker image, `ray_docker`) is built once
per key per node and reused by later trials there; a docker trial runs in a container, as
with the local executor. One attempt is made (the driver applies the retry rule); the
result is a plain dict with both logs' tails, the node and the hardware fingerprint.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bisector.builders.base import EnvBuilder
from bisector.builders.registry import make_builder
from bisector.config import Environment
from bisector.core.types import Commit
from bisector.engine.runner import DEFAULT_GRACE_S, run_trial
from bisector.errors import BuildError
from bisector.executors.archive import missing_links, unpack
from bisector.executors.fingerprint import local_fingerprint
from bisector.executors.watchdog import TRIAL_VAR
from bisector.executors.watchdog import spawn as spawn_watchdog
from bisector.executors.watchdog import stop as stop_watchdog
from bisector.ports import TrialStatus

if TYPE_CHECKING:
    from bisector.ports import Vcs

LOG_TAIL_BYTES = 256 * 1024  # per log, sent back to the driver
#: The node type a trial was placed on (`execution.ray.node_type(s)`; empty when none),
#: in the benchmark's environment.
NODE_TYPE_VAR = "BISECTOR_NODE_TYPE"


class DirVcs:
    """The builders' view of a commit's files, read from its unpacked checkout."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read_file(self, commit: str, path: str) -> bytes | None:  # noqa: ARG002
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root.resolve()) or not target.is_file():
            return None
        return target.read_bytes()


def node_placement() -> tuple[str, str]:
    """This worker's Ray node id and host name."""
    try:
        import ray  # noqa: PLC0415 (only ever called on a Ray worker)

        node = ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray: a test calling the function directly
        node = ""
    return node, socket.gethostname()


def _tail(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - LOG_TAIL_BYTES))
            return f.read()
    except OSError:
        return b""


# Builders by (name, environment, cache folder), kept for the life of the worker process:
# Ray reuses a worker for many trials, and a builder's facts (installed packages) cost
# a scan of every distribution to gather.
_BUILDERS: dict[str, tuple[DirVcs, EnvBuilder]] = {}


def _builder(spec: Mapping[str, Any], checkout: Path) -> EnvBuilder:
    key = json.dumps([spec["builder"], spec["environment"], spec["cache_dir"]], sort_keys=True)
    if key not in _BUILDERS:
        vcs = DirVcs(checkout)
        builder = make_builder(
            spec["builder"],
            vcs=cast("Vcs", vcs),  # the builders only read files through it
            environment=Environment.model_validate(spec["environment"]),
            store=Path(spec["cache_dir"]) / "store",
        )
        _BUILDERS[key] = (vcs, builder)
    vcs, builder = _BUILDERS[key]
    vcs.root = checkout  # this trial's files (one trial at a time per worker process)
    return builder


def fingerprint_task(node_type: str | None) -> dict[str, str]:
    """The fingerprint of the node this runs on (placement included)."""
    node, host = node_placement()
    return _fingerprint(node, host, node_type)


@functools.lru_cache(maxsize=8)
def _fingerprint(node: str, host: str, node_type: str | None) -> dict[str, str]:
    """Once per worker process: the hardware does not change under it (nvidia-smi is slow)."""
    return local_fingerprint(node, host, node_type)


def run_trial_task(spec: Mapping[str, Any], archive: bytes) -> dict[str, Any]:
    """One attempt of one trial (see the module docstring)."""
    node, host = node_placement()
    fingerprint = _fingerprint(node, host, spec.get("node_type"))
    cache = Path(spec["cache_dir"])
    commit = Commit(spec["sha"], "", "", "")
    checkout, lacking = unpack(archive, cache / "checkouts" / spec["checkout_id"])
    # A failure names the links its checkout lacks: the likely cause (`archive`).
    lacks = missing_links(lacking) if lacking else ""
    builder = _builder(spec, checkout)
    base: dict[str, Any] = {"node": node, "host": host, "fingerprint": fingerprint}
    try:
        built = builder.prepare(commit, checkout)
    except BuildError as exc:
        log_path = getattr(exc, "log_path", None)
        text = (_tail(log_path) if log_path else str(exc).encode()) + lacks.encode()
        return {**base, "build_failed": True, "reason": str(exc) + lacks, "build_log": text}
    logs = Path(tempfile.mkdtemp(prefix="trial-", dir=cache))
    token = uuid.uuid4().hex
    launcher, container = built.launcher, None
    if launcher is not None:  # docker: a container the watchdog can name (`ray_docker`)
        from bisector.executors.ray_docker import container_name, named_launcher  # noqa: PLC0415

        launcher, container = named_launcher(built, token), container_name(token)
    watchdog = spawn_watchdog(os.getpid(), token, container)  # survives the worker's exit
    try:
        result = (launcher or run_trial)(
            built.command(spec["command"]),
            cwd=built.checkout,
            env=built.environ(
                spec["env"], {TRIAL_VAR: token, NODE_TYPE_VAR: spec.get("node_type") or ""}
            ),
            timeout_s=float(spec["timeout_s"]),
            stdout_path=logs / "out",
            stderr_path=logs / "err",
            grace_s=DEFAULT_GRACE_S,
        )
    except BaseException:  # interrupted (`ray.cancel`), maybe before the launcher's clean-up
        if container is not None:
            from bisector.executors.ray_docker import remove_container  # noqa: PLC0415

            remove_container(container)
        raise
    finally:
        stop_watchdog(watchdog)
    out, err = _tail(logs / "out"), _tail(logs / "err")
    shutil.rmtree(logs, ignore_errors=True)
    return {
        **base,
        "build_failed": False,
        "env_key": built.env_key,
        "status": result.status.value,
        "metrics": {k: list(v) for k, v in result.metrics.items()},
        "meta": result.meta,
        "exit_code": result.exit_code,
        "duration_s": result.duration_s,
        "reason": result.reason + (lacks if result.status is not TrialStatus.OK else ""),
        "timed_out": result.timed_out,
        "stdout": out,
        "stderr": err,
    }
