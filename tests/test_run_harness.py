"""A bisection whose benchmark is the built-in harness finds a planted over-padding commit (CPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.testing.gitutil import commit, make_repo

from .test_bench_harness import SERVING_MODEL

pytestmark = [
    pytest.mark.slow,  # a whole bisection that trains and serves a model at every step
    pytest.mark.skipif(
        importlib.util.find_spec("torch") is None
        or importlib.util.find_spec("transformers") is None,
        reason="this interpreter has no torch/transformers (install the 'harness' extra)",
    ),
]

BATCHING = (
    "import torch\n\nTARGET = {target}\n\n\ndef pad_to_target(ids):\n"
    "    extra = max(0, TARGET - ids.shape[0])\n"
    "    return torch.cat([ids, ids[:1].expand(extra, -1)]) if extra else ids\n"
)

CONFIG = """\
benchmark:
  command: [python, -m, bisector.bench, --factory, "serving_model:build", --seq, "64",
            --batch-sizes, "1", --trials-per-process, "12", --warmup-max, "40", --threads, "1"]
  timeout: 120s
  repeats: {min: 3, max: 8}
metrics:
  latency_ms_bs1: {direction: lower, threshold: 10%}
environment:
  builder: local
snapshots:
  configs: ["configs/*.yaml"]
"""


def test_harness_bisection_names_the_over_padding_commit(tmp_path: Path) -> None:
    """The harness measures each step; the commit that pads to the target batch is named."""
    repo = make_repo(tmp_path / "serving")
    files: dict[str, str | bytes | None] = {
        "serving_model.py": SERVING_MODEL,
        "serving_batching.py": BATCHING.format(target=1),
        "configs/serving.yaml": "batching:\n  target_batch: 8\n",
        "bisector.yaml": CONFIG,
    }
    commit(repo, files, "Initial serving stack", tag="v1.0.0")
    culprit = ""
    for i in range(1, 7):
        changed: dict[str, str | bytes | None] = {"notes.txt": f"change {i}\n"}
        if i == 4:
            changed["serving_batching.py"] = BATCHING.format(target=8)
        sha = commit(repo, changed, f"Change {i}" if i != 4 else "Pad batches to the target size")
        if i == 4:
            culprit = sha
    commit(repo, {"notes.txt": "release\n"}, "Release", tag="v1.1.0")
    outcome = run_bisection(RunRequest(good="v1.0.0", bad="v1.1.0", repo=repo))
    doc = outcome.document.to_json()
    assert doc["status"] == "found", doc
    assert doc["culprit"]["commit"] == culprit
    assert doc["bad"]["value"] > 2 * doc["good"]["value"]
