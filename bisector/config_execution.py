"""The `execution:` section of `bisector.yaml` (see docs/config.md#execution): where trials run.

`local` (the default) runs every trial as a process on this machine, one at a time.
`ray` sends trials to a Ray cluster, `workers` at a time (docs/ray.md). Nothing here
imports ray: the executor module does, and only when `ray` is chosen.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from bisector.config_strict import Number, Strict

_ADDRESS = re.compile(r"^(?:local|auto|(?:ray://)?[A-Za-z0-9.\-\[\]:]+:\d{1,5})$")
# Ray's own resource keywords; any other key is a custom resource (`--resources` of `ray start`).
RAY_KEYWORDS = frozenset({"num_cpus", "num_gpus", "memory"})


def _check_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not local, auto, HOST:PORT or ray://HOST:PORT")
    return value


def _check_resources(value: dict[str, float]) -> dict[str, float]:
    for name, amount in value.items():
        if not name or amount < 0:
            raise ValueError(f"resources_per_trial: {name!r} must be a name with an amount >= 0")
    return value


class RayOptions(Strict):
    address: Annotated[str, AfterValidator(_check_address)] = Field(
        "local", description="local (start one here) | auto | HOST:PORT | ray://HOST:PORT"
    )
    resources_per_trial: Annotated[dict[str, Number], AfterValidator(_check_resources)] = Field(
        default_factory=lambda: {"num_cpus": 1.0},
        description="num_cpus, num_gpus, memory and custom resources one trial holds",
    )
    node_type: str | None = Field(
        None,
        min_length=1,
        description="a custom resource naming the node type trials run on (part of the fingerprint)",
    )
    node_types: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="custom resources naming the node types of one mixed run: each candidate "
        "is measured on one type, the endpoints on every type (docs/ray.md#mixed-hardware)",
    )
    cache_dir: str = Field(
        "/tmp/bisector-ray", min_length=1, description="node-local folder for checkouts and venvs"
    )

    @model_validator(mode="after")
    def _one_or_many(self) -> RayOptions:
        if self.node_type and self.node_types:
            raise ValueError("set node_type (one kind of node) or node_types (several), not both")
        if len(set(self.node_types)) != len(self.node_types):
            raise ValueError("node_types: each node type once")
        return self


class Execution(Strict):
    executor: Literal["local", "ray"] = "local"
    workers: int = Field(1, ge=1, le=256, description="trials in flight at once (ray)")
    ray: RayOptions = RayOptions()
