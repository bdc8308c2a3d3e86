"""How many processes a posterior search needs when it knows the truth about the noise.

The search of `bisector/core/posterior.py` (Horstein's rule, the same per-process cap as
`posterior.PROCESS_CAP`, stopping at `posterior.EPSILON`) with the exact model: the
two levels a gap of G process spreads apart, the spread known, no endpoint measured. It is
the floor that the hunt's search (which estimates the levels and the spread from the
ends' processes) can approach, not a rule bisector runs; bench/RESULTS.md, "Probabilistic
bisection", compares the two on 256 commits.

    python bench/posterior_oracle.py --commits 256 --gaps 3.1,2.5 --runs 2000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bisector.core import posterior


def search_once(n: int, gap: float, rng: random.Random) -> tuple[int, bool]:
    """Processes until settled, and whether the settled position is the true one."""
    first_bad = rng.randint(1, n - 1)
    llr: dict[int, float] = {}
    processes = 0
    while (j := posterior.next_probe(n, llr, set())) is not None:
        x = rng.gauss(gap if j >= first_bad else 0.0, 1.0)
        ratio = gap * (x - gap / 2)  # log N(x; gap, 1) / N(x; 0, 1)
        cap = posterior.PROCESS_CAP
        llr[j] = llr.get(j, 0.0) + max(-cap, min(cap, ratio))
        processes += 1
    return processes, posterior.best_block(n, llr, set()).first == first_bad


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--commits", type=int, default=256)
    p.add_argument("--gaps", default="3.1,2.5")
    p.add_argument("--runs", type=int, default=2000)
    args = p.parse_args(argv)
    print("| gap (spreads) | runs | processes median | mean | right |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for gap in (float(g) for g in args.gaps.split(",")):
        rng = random.Random(f"oracle:{args.commits}:{gap}")
        got = [search_once(args.commits, gap, rng) for _ in range(args.runs)]
        counts = [c for c, _ in got]
        right = sum(ok for _, ok in got) / len(got)
        print(
            f"| {gap:g} | {len(got)} | {statistics.median(counts):g} | "
            f"{statistics.mean(counts):.1f} | {100 * right:.1f}% |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
