"""The code-only cases of bench/compare_git_bisect.py, simulated thousands of times.

compare_git_bisect runs each case 3-5 times for real, side by side with `git bisect run`.
A bisection's executions are heavy-tailed (a search misled by one process costs a failed
verification and a re-bisection: +30 or more), so a median over 5 runs moves by several
executions from one run of the bench to the next. This runs the same cases through the
pure hunt (bench/simulate.py) with the sample benchmark's noise, on many seeds, so two
rule sets can be compared on the cases the <= 3x target is about:

- noise: 10 samples a process with 5% relative noise each, and a per-process offset of
  2.5% (`SampleSpec`'s sim mode as compare_git_bisect configures it);
- each case's size and step (`compare_git_bisect.make_case`, seed 1), threshold 5%,
  repeats {min: 3, max: 12} as in that bench;
- release tags at the quarters of the range, as the sample repositories have them
  (v2.3.1-v2.3.3 between v2.3.0 and v2.4.0): the hunt probes them first (coarse);
- `git bisect run`'s executions: one calibration run and ceil(log2 n) steps (what it
  took there: 7 at 64 commits, 9 at 256, 11-12 at 1024).

    python bench/simulate_bench_cases.py --runs 2000 --variants trimmed,early3
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import sim_noise
import simulate
import simulate_cost
from compare_git_bisect import make_case
from sim_noise import NoiseModel

from bisector.core.types import TrialBudget

SAMPLES = 10  # samples a process, as compare_git_bisect's sample repositories print
BUDGET = TrialBudget(3, 12)


def bench_model(step: float) -> NoiseModel:
    return NoiseModel(
        "sample-bench", "5% a sample x 10, 2.5% a process", 0.05, 0.025, steps=(step,)
    )


def quarter_tags(n_commits: int) -> list[int]:
    """Release tags at the quarters, as in the sample repositories."""
    return [n_commits * k // 4 for k in (1, 2, 3)]


def git_executions(n_commits: int) -> int:
    return 1 + math.ceil(math.log2(n_commits))


def run_case(variant: str, n_commits: int, step: float, runs: int) -> list[simulate.Outcome]:
    noise = [(sim_noise, "SAMPLES_PER_TRIAL", SAMPLES), (simulate, "BUDGET", BUDGET)]
    with simulate_cost.patched([*simulate_cost.knobs(variant), *noise]):
        model = bench_model(step)
        return [
            simulate.simulate_once(
                model,
                random.Random(f"bench:{n_commits}:{step}:{i}"),
                rule="lean",
                n_commits=n_commits,
                tags=quarter_tags(n_commits),
            )
            for i in range(runs)
        ]


def row(name: str, variant: str, n_commits: int, outs: Sequence[simulate.Outcome]) -> str:
    trials = [o.trials for o in outs]
    n, git = len(outs), git_executions(n_commits)
    mean, med = sum(trials) / n, statistics.median(trials)
    wrong = sum(o.wrong_exit0 for o in outs)
    return (
        f"| {name} | {variant} | {n} | {simulate._pct(sum(o.right for o in outs), n)} | "
        f"{wrong} | {mean:.1f} | {med:g} | {simulate._p90(trials)} | {git} | "
        f"{med / git:.2f} | {mean / git:.2f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--variants", default="default")
    p.add_argument("--sizes", default="64,256,1024")
    args = p.parse_args(argv)
    print(
        "| case | variant | runs | right | wrong exit 0 | executions mean | median | p90 | "
        "git bisect run | median / git | mean / git |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.sizes.split(",")):
        for merges in (False, True):
            case = make_case(size, "code", merges, 1)
            name = f"{case.name} ({case.slowdown:.0%} step)"
            for variant in args.variants.split(","):
                outs = run_case(variant, size, case.slowdown, args.runs)
                print(row(name, variant, size, outs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
