"""The kinds of machine a ray run measured on (`node_types` of the run document).

A ray run journals each trial under a benchmark key that carries its hardware
fingerprint (docs/ray.md#fair-comparisons-fingerprints); over several node types
(`execution.ray.node_types`) a run has one key per type. The reports read every one of
them, and mark each trial with its type, from this part of the document (not from the
current config, which may have changed since).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bisector.document._json import Json


@dataclass(frozen=True)
class NodeTypeTrials:
    """One kind of machine of a run: its node type (None: not pinned to one), the
    benchmark key of its trials, its fingerprint (GPU, driver, CUDA, CPU, node type) and
    the trials of it this run took and reused from earlier runs."""

    node_type: str | None
    bench_key: str
    fingerprint: Mapping[str, str] = field(default_factory=dict)
    trials: int = 0
    reused: int = 0

    def to_json(self) -> Json:
        return {
            "node_type": self.node_type,
            "bench_key": self.bench_key,
            "fingerprint": dict(self.fingerprint),
            "trials": self.trials,
            "reused": self.reused,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeTypeTrials:
        fingerprint = data.get("fingerprint")
        return cls(
            None if data.get("node_type") is None else str(data["node_type"]),
            str(data.get("bench_key") or ""),
            {str(k): str(v) for k, v in fingerprint.items()}
            if isinstance(fingerprint, Mapping)
            else {},
            int(data.get("trials") or 0),
            int(data.get("reused") or 0),
        )

    @property
    def name(self) -> str:
        """What a report calls this kind: the node type, else the GPU or CPU model."""
        return self.node_type or self.fingerprint.get("gpu") or self.fingerprint.get("cpu") or "?"
