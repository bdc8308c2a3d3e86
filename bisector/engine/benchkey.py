"""The benchmark's identity: trials under the same key are comparable across runs.

Its own module because the pipeline, isolation and the report all need it, and none of
them should import another for one hash.
"""

from __future__ import annotations

import hashlib
import json

from bisector.config import Config
from bisector.core.types import Commit


def bench_key(cfg: Config, good_sha: str | None = None) -> str:
    """Identifies the benchmark: trials of the same key are comparable across runs.

    With `benchmark.reference: auto` the trials' agreement metrics are relative to the
    reference made at the good endpoint: they are comparable only with trials of runs
    with the same good endpoint (`good_sha`). Without it the key is what it always was.
    """
    payload: dict[str, object] = {"command": cfg.benchmark.command, "env": cfg.benchmark.env}
    if cfg.benchmark.reference is not None:
        payload["reference"] = [cfg.benchmark.reference, good_sha]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def run_key(
    good: Commit, bad: Commit, metric: str, builder: str, all_commits: bool, bkey: str
) -> str:
    """The journal's identity of a run: the same request resumes the same run."""
    raw = "\0".join([good.sha, bad.sha, metric, builder, str(all_commits), bkey])
    return hashlib.sha256(raw.encode()).hexdigest()
