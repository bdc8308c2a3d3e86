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


def test_every_cost_variant_names_real_knobs_and_the_default_is_posterior() -> None:
    """bench/simulate_cost.py: each variant patches constants that exist (a renamed knob
    fails here, not in a 20-minute run), restores them, and `posterior` is what the code
    does by default (the same executions on the same seeds)."""
    bench = str(_SCRIPT.parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)
    _load()  # simulate_cost imports it by name
    import simulate_cost  # type: ignore[import-not-found]

    from bisector.core import sampling, sequential

    before = (sampling.ENDS_TOP_UP_AFTER, sequential.LEAN)
    for name in simulate_cost.VARIANTS:
        with simulate_cost.patched(simulate_cost.knobs(name)):
            pass
    assert (sampling.ENDS_TOP_UP_AFTER, sequential.LEAN) == before
    runs = {v: simulate_cost.run_variant(v, ["two-steps"], 4) for v in ("default", "posterior")}
    assert [o.trials for o in runs["default"]["two-steps"]] == [
        o.trials for o in runs["posterior"]["two-steps"]
    ]


def test_bench_cases_run_with_the_sample_benchmarks_noise_and_restore_it() -> None:
    """bench/simulate_bench_cases.py: a case runs through the hunt with 10 samples a
    process and repeats.max 12, counts git bisect run's executions as compare_git_bisect
    saw them, and leaves the simulator's settings as they were."""
    bench = str(_SCRIPT.parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)
    _load()
    import simulate_bench_cases as cases  # type: ignore[import-not-found]

    def settings() -> tuple[int, object]:  # the modules the script patches, as it sees them
        return cases.sim_noise.SAMPLES_PER_TRIAL, cases.simulate.BUDGET

    before = settings()
    outs = cases.run_case("default", 32, 0.3, 3)
    assert len(outs) == 3 and all(o.trials >= 8 for o in outs)
    assert settings() == before and before[0] != cases.SAMPLES
    assert [cases.git_executions(n) for n in (64, 256, 1024)] == [7, 9, 11]
    assert cases.row("c", "default", 32, outs).startswith("| c | default | 3 |")


def test_the_posterior_oracle_places_a_wide_step_in_about_log2_n_processes() -> None:
    """bench/posterior_oracle.py: with the true model and a gap of 8 spreads, every
    process is as clear as the cap allows, so the search takes about log2(n) processes
    (a few more to reach 90%) and places the step right."""
    bench = str(_SCRIPT.parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import posterior_oracle  # type: ignore[import-not-found]

    rng = random.Random("oracle-test")
    got = [posterior_oracle.search_once(64, 8.0, rng) for _ in range(50)]
    assert all(ok for _, ok in got)
    assert all(6 <= n <= 12 for n, _ in got)
