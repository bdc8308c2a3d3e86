"""The harness builds a transformers model with random weights fast and deterministically."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .test_bench_harness import _env, _torch_python_ok, needs_torch

__all__ = ["_torch_python_ok"]  # needs_torch's skip condition is evaluated in this module

SCRIPT = """
import json, torch
from bisector.harness import _model

def opts(arch, seed):
    return dict(arch=arch, layers=2, hidden=64, heads=2, intermediate=128, vocab=256, seq=16,
                new_tokens=0, kv_heads=None, model_config=None, dtype="float32",
                attn="sdpa", seed=seed)

out = {}
for arch in ("llama", "gpt2"):
    runs = [_model.from_transformers(torch, opts(arch, s), torch.device("cpu")) for s in (0, 0, 1)]
    inputs = runs[0].build_inputs(2, 0)
    with torch.no_grad():
        logits = [w.model(**inputs).logits for w in runs]
    out[arch] = {
        "same_seed_equal": bool(torch.equal(logits[0], logits[1])),
        "other_seed_differs": not torch.allclose(logits[0], logits[2]),
        "finite": bool(torch.isfinite(logits[0]).all()),
        "phases": sorted(runs[0].phases),
        "tied": arch != "gpt2" or runs[0].model.lm_head.weight is runs[0].model.transformer.wte.weight,
    }
print(json.dumps(out))
"""


@pytest.mark.slow
@needs_torch
def test_same_seed_builds_identical_models_and_another_seed_does_not() -> None:
    """Two builds with the same seed give identical logits (references still agree); another
    seed gives other weights; tied embeddings stay tied; the build's phases are timed."""
    done = subprocess.run(  # fixed argv
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for arch, facts in result.items():
        assert facts["same_seed_equal"] and facts["other_seed_differs"], arch
        assert facts["finite"] and facts["tied"], arch
        assert facts["phases"] == ["construct_s", "fill_s", "import_model_s"], arch
