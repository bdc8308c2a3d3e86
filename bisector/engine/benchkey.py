"""The benchmark's identity: trials under the same key are comparable across runs.

Its own module because the pipeline, isolation and the report all need it, and none of
them should import another for one hash.
"""

from __future__ import annotations

import hashlib
import json

from bisector.config import Config


def bench_key(cfg: Config) -> str:
    """Identifies the benchmark: trials of the same key are comparable across runs."""
    payload = {"command": cfg.benchmark.command, "env": cfg.benchmark.env}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
