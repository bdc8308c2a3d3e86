"""Smoke test of bench/compare_git_bisect.py: both tools run side by side on a tiny case."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "compare_git_bisect.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_git_bisect", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_compare_case_runs_both_tools_on_a_tiny_repo(tmp_path: Path) -> None:
    """One 16-commit code case: bisector and git bisect run, count executions, get judged."""
    bench = _load()
    case = bench.make_case(16, "code", False, seed=1)
    result = bench.compare_case(case, tmp_path, reps=1)
    ((b, g),) = result.runs
    assert b.tool == "bisector" and g.tool == "git"
    assert b.executions >= 4 and g.executions >= 2  # endpoints (+ calibration) at least
    assert b.verdict in ("exact", "range"), b
    assert g.verdict in ("exact", "range", "wrong", "missed"), g
    section = bench.render(
        [result], "python bench/compare_git_bisect.py", dt.datetime.now(dt.UTC), 1.0
    )
    assert section.startswith("## bisector vs git bisect run")
    assert "| 16/code/linear |" in section
    out = tmp_path / "RESULTS.md"
    out.write_text("# bench results\n\n## other\n\nkept\n")
    bench.write_section(out, section)
    bench.write_section(out, section)  # replacing, not appending
    text = out.read_text()
    assert text.count("## bisector vs git bisect run") == 1 and "kept" in text
