"""`benchmark.reference: auto`: a harness bisection judges output agreement with no extra steps (CPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.testing.gitutil import commit, make_repo

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,  # a bisection whose every trial imports torch
    pytest.mark.skipif(
        importlib.util.find_spec("torch") is None,
        reason="this interpreter has no torch (install the 'harness' extra)",
    ),
]

# The serving model of tests/test_run_harness.py, smaller: its outputs matter here, not its speed.
MODEL = """
import torch

from serving_prep import prepare


class TinyLM(torch.nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, input_ids):
        return self.head(torch.relu(self.embed(input_ids)))


def build(device, dtype, seed, seq, vocab):
    model = TinyLM(vocab, 32).to(device=device, dtype=dtype)

    def inputs(batch_size, index):
        gen = torch.Generator().manual_seed(seed + 7919 * index + batch_size)
        return prepare(torch.randint(3, vocab, (batch_size, seq), generator=gen))

    return model, inputs
"""
PREP_GOOD = "def prepare(ids):\n    return ids\n"
# The planted accuracy regression: a "truncation" that blanks the second half of each row.
PREP_BAD = "def prepare(ids):\n    ids = ids.clone()\n    ids[:, ids.shape[1] // 2 :] = 0\n    return ids\n"

CONFIG = """\
benchmark:
  command: [python, -m, bisector.bench, --factory, "serving_model:build", --seq, "8",
            --batch-sizes, "1", --trials-per-process, "2", --warmup-min, "0",
            --warmup-max, "2", --rotate, "1", --reference-inputs, "1", --threads, "1"]
  timeout: 120s
  repeats: {min: 3, max: 8}
  reference: auto
metrics:
  top1_agreement: {direction: higher, threshold: 0.05}
environment:
  builder: local
snapshots:
  configs: []
"""


def test_reference_auto_names_the_commit_that_changed_the_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference is made once at the good endpoint; the commit that changes outputs is named."""
    # The trials' `python -m bisector.bench` is this checkout's harness, not an installed one.
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    repo = make_repo(tmp_path / "serving")
    files: dict[str, str | bytes | None] = {
        "serving_model.py": MODEL,
        "serving_prep.py": PREP_GOOD,
        "bisector.yaml": CONFIG,
    }
    commit(repo, files, "Initial serving stack", tag="v1.0.0")
    culprit = commit(repo, {"serving_prep.py": PREP_BAD}, "Truncate long requests")
    commit(repo, {"notes.txt": "release\n"}, "Release", tag="v1.1.0")
    outcome = run_bisection(RunRequest(good="v1.0.0", bad="v1.1.0", repo=repo))
    doc = outcome.document.to_json()
    assert doc["status"] == "found", doc
    assert doc["culprit"]["commit"] == culprit
    assert doc["good"]["value"] == pytest.approx(1.0)  # the good endpoint agrees with itself
    assert doc["bad"]["value"] < 0.95
    reference = repo / ".bisector" / "runs" / doc["run_id"] / "reference" / "reference.pt"
    assert reference.is_file()  # under the run's folder, keyed by run
