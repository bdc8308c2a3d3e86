"""The hardware fingerprint of the machine a trial ran on (docs/ray.md#fingerprints).

Trials are compared only within one fingerprint: GPU model, driver and CUDA version,
CPU model, and the Ray node type the trial was placed on (a custom resource). The node
id and host are recorded too but are not part of the key: two nodes of the same kind
measure alike.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping

#: Recorded with each trial but not part of the fairness key.
PLACEMENT_FIELDS = ("node", "host")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_facts() -> dict[str, str]:
    """GPU model, driver and CUDA version from nvidia-smi; empty values without one."""
    facts = {"gpu": "", "driver": "", "cuda": ""}
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            first = proc.stdout.strip().splitlines()[0].split(",")
            facts["gpu"] = first[0].strip()
            facts["driver"] = first[1].strip() if len(first) > 1 else ""
        header = subprocess.run(
            ["nvidia-smi"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
        if "CUDA Version:" in header:
            facts["cuda"] = header.split("CUDA Version:", 1)[1].split()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return facts


def local_fingerprint(node: str, host: str, node_type: str | None) -> dict[str, str]:
    """This machine's fingerprint, with the placement it was measured under."""
    return {
        **gpu_facts(),
        "cpu": cpu_model(),
        "node_type": node_type or "",
        "node": node,
        "host": host,
    }


def fairness_key(fingerprint: Mapping[str, str]) -> str:
    """A short stable key of what makes measurements comparable (placement left out)."""
    kept = {k: v for k, v in sorted(fingerprint.items()) if k not in PLACEMENT_FIELDS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]
