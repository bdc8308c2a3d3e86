"""Smoke test of bench/simulate.py: simulated bisections run and report (rates are not asserted)."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

_SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "simulate.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simulate", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_simulate_once_reproduces_bisects_and_verifies() -> None:
    """One simulated bisection under normal noise ends with a status and counts its trials."""
    sim = _load()
    model = sim.MODEL_BY_NAME["normal"]
    for rule in sim.RULES:
        out = sim.simulate_once(model, random.Random("t"), rule=rule, n_commits=32)
        phases = dict(out.by_phase)
        assert out.trials == sum(phases.values()) and phases["endpoints"] >= 6
        assert out.status.value in ("found", "inconclusive", "not_reproduced")
    naive = sim.naive_once(model, random.Random("t"), n_commits=32)
    assert naive.trials == 2 + 5  # two endpoints, log2(32) probes


def test_quick_run_writes_its_section_and_keeps_the_others(tmp_path: Path) -> None:
    """`--quick --write` prints the table for every model and replaces only its own section."""
    sim = _load()
    results = tmp_path / "RESULTS.md"
    results.write_text("# bench results\n\n## other\n\nkept\n", encoding="utf-8")
    assert sim.main(["--quick", "--write", "--results", str(results)]) == 0
    assert sim.main(["--quick", "--write", "--results", str(results), "--models", "normal"]) == 0
    text = results.read_text(encoding="utf-8")
    assert "## other\n\nkept" in text and text.count(sim.TITLE) == 1
    assert "| normal | sequential | 3 |" in text and "| normal | pinpoint | 3 |" in text
    assert "| normal | lean | 3 |" in text
