"""The harness can be used without reading its source: --help states the factory contract,
and docs/harness.md's example factory runs, with references passed through the environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bisector.initwizard.templates import HARNESS_FACTORY

from .test_bench_harness import (
    _torch_python_ok,  # noqa: F401 (the skipif string reads it)
    run_bench,
)

needs_torch = pytest.mark.skipif(
    "not _torch_python_ok()", reason="this interpreter cannot import torch and transformers"
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "harness.md"


def test_help_states_the_factory_contract() -> None:
    """`python -m bisector.bench --help` names the factory's keyword arguments and input_builder."""
    proc = run_bench(["--help"], Path.cwd(), python=sys.executable)
    assert proc.returncode == 0
    text = proc.stdout
    for word in ("device", "dtype", "seed", "attn_implementation", "seq", "vocab", "options"):
        assert re.search(rf"^\s+{word}\s", text, re.MULTILINE), word
    assert "input_builder(batch_size, index)" in text and "docs/harness.md" in text
    assert "BISECTOR_REFERENCE_IN" in text


def _doc_factory() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def test_the_documented_factory_is_the_one_init_writes() -> None:
    """docs/harness.md shows exactly the factory `bisector init --bench harness` writes."""
    assert _doc_factory() == HARNESS_FACTORY


@pytest.mark.slow
@needs_torch
def test_the_documented_factory_runs_and_agrees_with_its_reference(tmp_path: Path) -> None:
    """The doc's factory measures, saves a reference via BISECTOR_REFERENCE_OUT and agrees via _IN."""
    (tmp_path / "bisector_factory.py").write_text(_doc_factory(), encoding="utf-8")
    ref = tmp_path / "ref.pt"
    args = ["--factory", "bisector_factory:build", "--batch-sizes", "1,2", "--device", "cpu"]
    args += ["--trials-per-process", "3", "--warmup-max", "5", "--threads", "1"]
    results = []
    for variable in ("BISECTOR_REFERENCE_OUT", "BISECTOR_REFERENCE_IN"):
        env = {**os.environ, variable: str(ref)}
        env["PYTHONPATH"] = os.pathsep.join([str(DOC.parents[1]), env.get("PYTHONPATH", "")])
        proc = subprocess.run(  # the harness as bisector runs it, the variable set by `reference: auto`
            [sys.executable, "-m", "bisector.bench", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    saved, compared = results
    assert ref.is_file() and len(saved["latency_ms_bs1"]) == 3 and "top1_agreement" not in saved
    assert compared["top1_agreement"] == 1.0 and compared["agreement_cosine"] > 0.9999
