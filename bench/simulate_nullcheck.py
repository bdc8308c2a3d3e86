"""Simulated: exit 3 vs exit 4 when the endpoints do not show the regression (issue 12).

`not_reproduced` (exit 3) only when the endpoints rule out a regression of the threshold
(`bisector/core/nullcheck.py`), else `inconclusive` (exit 4). Runs the hunt (lean rule,
bench/simulate.py's settings) on the same seeds with the check (*after*) and without it
(*before*: a not-reproduced reproduction is exit 3 at once, as before the check), over
ranges with a real step under every noise model, a step a frequent hog hides
(`hog-hides-step`), and a true null under every noise model (`null:<model>`).

    python bench/simulate_nullcheck.py --runs 2000 [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from sim_noise import HIDDEN_STEP, MODELS, NULL_MODELS
from simulate import RESULTS, Outcome, _pct, _upper95, run_all, write_section

from bisector.core import nullcheck
from bisector.core.types import Status

TITLE = "## Exit 3 or exit 4 when the endpoints do not show it (issue 12, simulated)"


def _run(models: Sequence[str], runs: int, commits: int, check: bool) -> dict[str, list[Outcome]]:
    original = nullcheck._rules_out
    if not check:  # before: whatever did not reproduce was exit 3 at once
        nullcheck._rules_out = lambda *_a: True  # type: ignore[assignment]
    try:
        got = run_all(models, ["lean"], runs, commits, jobs=1)
    finally:
        nullcheck._rules_out = original  # type: ignore[assignment]
    return {m: got[(m, "lean")] for m in models}


def table(before: dict[str, list[Outcome]], after: dict[str, list[Outcome]]) -> list[str]:
    rows = [
        "| model | step | runs | exit 3 before | exit 3 after | exit 4 before | exit 4 after | "
        "exit 0 right after | wrong exit 0 after (95% bound) | trials before | trials after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m, got in after.items():
        old, n = before[m], len(got)
        null = got[0].control

        def rate(outs: list[Outcome], status: Status, n: int = n) -> str:
            return _pct(sum(o.status is status for o in outs), n)

        wrong = sum(o.wrong_exit0 for o in got)
        rows.append(
            f"| {m} | {'none' if null else 'yes'} | {n} | "
            f"{rate(old, Status.NOT_REPRODUCED)} | {rate(got, Status.NOT_REPRODUCED)} | "
            f"{rate(old, Status.INCONCLUSIVE)} | {rate(got, Status.INCONCLUSIVE)} | "
            f"{_pct(sum(o.status is Status.FOUND and o.is_step for o in got), n)} | "
            f"{_pct(wrong, n)} (<= {100 * _upper95(wrong, n):.2f}%) | "
            f"{sum(o.trials for o in old) / n:.1f} | {sum(o.trials for o in got) / n:.1f} |"
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--commits", type=int, default=64)
    p.add_argument("--write", action="store_true", help=f"write the section into {RESULTS}")
    args = p.parse_args(argv)
    models = [m.name for m in (*MODELS, HIDDEN_STEP, *NULL_MODELS)]
    t0 = time.monotonic()
    before = _run(models, args.runs, args.commits, check=False)
    after = _run(models, args.runs, args.commits, check=True)
    wall = time.monotonic() - t0
    section = "\n".join(
        [
            TITLE,
            "",
            f"`python bench/simulate_nullcheck.py --runs {args.runs} --commits {args.commits}` "
            f"({wall:.0f} s, 1 process): the lean hunt of bench/simulate.py (threshold 5%, "
            "repeats {min: 3, max: 15}, one +10% step) on the same seeds without the "
            "equivalence check (*before*) and with it (*after*). *step* none: a true null "
            "(`null:<model>` is that model's noise without its step).",
            "",
            *table(before, after),
            "",
        ]
    )
    print(section)
    if args.write:
        write_section(RESULTS, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
