"""What an environment was, attached to its commit's snapshot once it has run.

The builder knows the resolved packages and the interpreter; the benchmark's first trial
may add what only the running process sees (torch, CUDA, cuDNN, driver, GPU: the
harness's `_env` / `_gpu` metadata). Both go into the snapshot, so `snapshot diff`
shows resolved, not only declared, changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bisector.builders.base import BuiltEnv
from bisector.config import Config
from bisector.errors import BisectorError
from bisector.log import get_logger
from snapshots import api
from snapshots.manifest import ResolvedPackage, Runtime

log = get_logger("bisector.envrecord")


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def runtime_fields(built: BuiltEnv, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Runtime facts from the builder and the trial's metadata (pure)."""
    env = meta.get("_env") if isinstance(meta.get("_env"), Mapping) else {}
    gpu = meta.get("_gpu") if isinstance(meta.get("_gpu"), Mapping) else {}
    assert isinstance(env, Mapping) and isinstance(gpu, Mapping)
    extra = {k: str(v) for k, v in (built.runtime.as_dict() if built.runtime else {}).items()}
    if env.get("transformers"):
        extra["transformers"] = str(env["transformers"])
    return {
        "python": _text(env.get("python"))
        or (built.runtime.python_version if built.runtime else None),
        "torch": _text(env.get("torch")),
        "cuda": _text(gpu.get("cuda_runtime")),
        "cudnn": _text(gpu.get("cudnn")),
        "driver": _text(gpu.get("driver")),
        "gpu": _text(gpu.get("name") or gpu.get("torch_name")),
        "extra": extra,
    }


def attach(
    repo: Path, cfg: Config, commit_sha: str, built: BuiltEnv, meta: Mapping[str, Any]
) -> None:
    """Record `built` in the snapshot of `commit_sha` (taking the snapshot if needed).

    Best effort: a failure is logged, never fatal to a measurement already journaled.
    """

    try:
        api.take(repo, cfg, [commit_sha])
        api.attach_environment(
            repo,
            cfg,
            commit_sha,
            built.env_key,
            [ResolvedPackage(name=n, version=v) for n, v in built.packages],
            Runtime(**runtime_fields(built, meta)),
        )
    except BisectorError as exc:
        log.warning(
            "could not attach the environment to the snapshot",
            commit=commit_sha[:10],
            error=str(exc),
        )
