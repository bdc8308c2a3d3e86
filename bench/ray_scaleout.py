"""Scale-out on Ray (issue 16): rounds to the culprit per K, and wall time K=3 vs K=1.

1. Rounds: the pure multisection (`bisector.core.multisect`) over N = 64 and 256
   candidates with a fake probe that answers exactly, for every first-bad position; the
   worst and mean rounds per K = 1, 3, 7 against ceil(log_{K+1} N) + 2.
2. Wall time: a real Ray head on 127.0.0.1 (`bisector.testing.raycluster`, its own
   session and ports) and two identical 64-commit repositories whose benchmark sleeps a
   fixed time (its duration does not depend on free CPU, so a 2-core machine can show
   the parallelism); `bisector run --executor ray --workers K` on each, K = 1 then 3.
   Reported: wall time, trials journaled, the verdict, and the ratio K=3 / K=1.

Usage: python bench/ray_scaleout.py [--sleep 0.5] [--culprit 41] [--workdir DIR]
Prints a Markdown section (paste into bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bisector.core.multisect import rounds_bound, rounds_to_culprit  # noqa: E402
from bisector.testing.raycluster import RayHead, sleep_repo  # noqa: E402


def rounds_table() -> list[str]:
    lines = [
        "| N | K | worst rounds | mean rounds | bound ceil(log_{K+1} N) + 2 | within |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n in (64, 256):
        for k in (1, 3, 7):
            rounds = []
            for culprit in range(1, n):
                r, result = rounds_to_culprit(n, k, culprit)
                assert result.first_bad == culprit
                rounds.append(r)
            bound = rounds_bound(n, k) + 2
            worst = max(rounds)
            lines.append(
                f"| {n} | {k} | {worst} | {sum(rounds) / len(rounds):.2f} | {bound} | "
                f"{'yes' if worst <= bound else 'NO'} |"
            )
    return lines


def run_once(
    head: RayHead, work: Path, workers: int, sleep: float, culprit: int
) -> dict[str, object]:
    repo = sleep_repo(work / f"repo-k{workers}", 64, culprit)
    config = work / f"k{workers}.yaml"
    config.write_text(
        json.dumps(
            {
                "benchmark": {
                    "command": ["python", "bench.py"],
                    "timeout": "120s",
                    "repeats": {"min": 3, "max": 8},
                    "env": {"SLEEP_S": str(sleep)},
                },
                "metrics": {"latency_ms": {"direction": "lower"}},
                "execution": {
                    "executor": "ray",
                    "workers": workers,
                    "ray": {
                        "address": head.address,
                        "resources_per_trial": {"num_cpus": 1},
                        "cache_dir": str(work / "cache"),
                    },
                },
            }
        )
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "run", "--repo", str(repo), "--config", str(config)]
        + ["--good", "good", "--bad", "bad", "--json"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"K={workers}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    doc = json.loads(proc.stdout)
    sha = doc["culprit"]["commit"]
    index = subprocess.run(
        ["git", "-C", str(repo), "show", f"{sha}:commit.txt"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "wall": wall,
        "trials": doc["measurements"],
        "culprit": int(index),
        "status": doc["status"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sleep", type=float, default=0.5)
    ap.add_argument("--culprit", type=int, default=41)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    out = ["### Rounds to the culprit (pure multisection, every first-bad position)", ""]
    out += rounds_table()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ray-scaleout-"))
    head = RayHead.start(work / "head", num_cpus=4, num_gpus=0, resources={})
    try:
        runs = {k: run_once(head, work, k, args.sleep, args.culprit) for k in (1, 3)}
    finally:
        head.stop()
    out += [
        "",
        f"### Wall time on a real Ray head, N = 64, planted culprit {args.culprit}, "
        f"benchmark sleeps {args.sleep:g} s",
        "",
        "| K | wall (s) | trials | status | culprit |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k, r in runs.items():
        out.append(f"| {k} | {r['wall']:.1f} | {r['trials']} | {r['status']} | {r['culprit']} |")
    ratio = float(runs[3]["wall"]) / float(runs[1]["wall"])  # type: ignore[arg-type]
    same = runs[1]["culprit"] == runs[3]["culprit"] == args.culprit
    out += ["", f"- wall K=3 / K=1: **{ratio:.2f}x** (target <= 0.5x); same verdicts: {same}"]
    print("\n".join(out))


if __name__ == "__main__":
    main()
