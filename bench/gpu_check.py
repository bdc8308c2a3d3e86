"""GPU check of the benchmark harness: is it fit to measure a serving regression?

Runs ``python -m bisector.bench`` in several fresh processes on a model big enough to be
compute-bound (Llama-style, 16 layers x 2048, 512 tokens, bf16, sdpa) -- unpadded at
BS=1 and BS=8, and with ``--pad-to 8`` at BS=1 (the planted over-padding regression) --
alternating the order of the variants, and prints a Markdown table for bench/RESULTS.md:
per-process median latency, the spread between processes, peak memory, the harness's
own overhead (process start to first sample, total wall time), and whether padded BS=1
differs significantly from unpadded BS=1 (exact Mann-Whitney U over per-process
medians). Without a GPU it runs a small model on CPU (a dry run).

Standard library only; the harness's interpreter needs torch and transformers.
Usage (repository root): ``PYTHONPATH=. python bench/gpu_check.py [--processes 5]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

GPU_MODEL = [
    "--arch",
    "llama",
    "--layers",
    "16",
    "--hidden",
    "2048",
    "--heads",
    "16",
    "--intermediate",
    "5632",
    "--vocab",
    "32000",
    "--seq",
    "512",
    "--dtype",
    "bfloat16",
    "--attn",
    "sdpa",
]
CPU_MODEL = [
    "--arch",
    "llama",
    "--layers",
    "2",
    "--hidden",
    "256",
    "--heads",
    "4",
    "--intermediate",
    "688",
    "--vocab",
    "1024",
    "--seq",
    "64",
    "--dtype",
    "float32",
    "--attn",
    "sdpa",
]
VARIANTS = {
    "plain": ["--batch-sizes", "1,8"],
    "padded": ["--batch-sizes", "1", "--pad-to", "8"],
    "graphs": ["--batch-sizes", "1,8", "--cuda-graphs"],
}


@dataclass
class Trial:
    variant: str
    launched: float
    wall_s: float
    result: dict[str, Any] | None
    error: str = ""


@dataclass
class Summary:
    label: str
    medians: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)


# --- statistics (stdlib only) ---------------------------------------------------------


def _u_distribution(n1: int, n2: int) -> list[int]:
    """counts[u]: how many of the C(n1+n2, n1) orderings give U = u (no ties)."""
    table = {(0, n): [1] for n in range(n2 + 1)}
    for m in range(1, n1 + 1):
        table[(m, 0)] = [1]
        for n in range(1, n2 + 1):
            a, b = table[(m - 1, n)], table[(m, n - 1)]  # last element from sample 1 / 2
            counts = [0] * (m * n + 1)
            for u, c in enumerate(a):
                counts[u + n] += c
            for u, c in enumerate(b):
                counts[u] += c
            table[(m, n)] = counts
    return table[(n1, n2)]


def mann_whitney(x: list[float], y: list[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: (U of x, p). Exact without ties, else normal approximation."""
    n1, n2 = len(x), len(y)
    u = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y)
    pooled = x + y
    if len(set(pooled)) == len(pooled) and n1 * n2 <= 400:
        counts = _u_distribution(n1, n2)
        total = sum(counts)
        extreme = min(u, n1 * n2 - u)
        tail = sum(c for k, c in enumerate(counts) if k <= extreme)
        return u, min(1.0, 2 * tail / total)
    mean = n1 * n2 / 2
    ties = sum(c**3 - c for c in (pooled.count(v) for v in set(pooled)))
    n = n1 + n2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sd == 0:
        return u, 1.0
    z = (abs(u - mean) - 0.5) / sd
    return u, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def spread_pct(values: list[float]) -> float:
    """(max - min) / median of the per-process medians, in percent."""
    return 100 * (max(values) - min(values)) / statistics.median(values) if values else float("nan")


# --- running the harness ----------------------------------------------------------------


def has_cuda(python: str) -> bool:
    probe = subprocess.run(  # fixed argv
        [python, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return probe.returncode == 0 and probe.stdout.strip().endswith("True")


def run_trial(
    python: str, variant: str, model: list[str], extra: list[str], out: Path | None, n: int
) -> Trial:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH", "")] if p)
    argv = [python, "-m", "bisector.bench", *model, *VARIANTS[variant], *extra]
    launched = time.time()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired:
        return Trial(variant, launched, time.time() - launched, None, "timed out")
    wall = time.time() - launched
    if out is not None:
        (out / f"trial{n:02d}-{variant}.stderr.txt").write_text(proc.stderr[-20000:])
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return Trial(
            variant, launched, wall, None, f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"
        )
    result = json.loads(lines[-1])
    if out is not None:
        (out / f"trial{n:02d}-{variant}.json").write_text(lines[-1] + "\n")
    return Trial(variant, launched, wall, result)


def _fmt(values: list[float], digits: int = 2) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


def _print_overheads(ok: list[Trial]) -> None:
    """Launch-to-first-sample and where a process's time goes (imports, build, warm-up)."""

    def timing(key: str) -> list[float]:
        return [
            t.result["_run"]["timings"][key]
            for t in ok
            if t.result and t.result["_run"]["timings"].get(key) is not None
        ]

    to_first = [
        t.result["_run"]["timings"]["first_sample_unix"] - t.launched for t in ok if t.result
    ]
    walls = [t.wall_s for t in ok]
    if to_first:
        print(
            f"- harness overhead per process: launch to first sample median {statistics.median(to_first):.1f} s "
            f"({min(to_first):.1f}-{max(to_first):.1f}); wall time median {statistics.median(walls):.1f} s "
            f"({min(walls):.1f}-{max(walls):.1f}); of which import torch {statistics.median(timing('import_torch_s')):.1f} s, "
            f"import transformers {statistics.median(timing('import_transformers_s') or [0.0]):.1f} s, "
            f"model build {statistics.median(timing('build_s')):.1f} s"
        )
        warm = [w["calls"] for t in ok if t.result for w in t.result["_run"]["warmup"].values()]
        print(
            f"- warm-up calls until settled: median {statistics.median(warm):.0f} (max {max(warm)})"
        )


def _print_gpu_state(ok: list[Trial], g: dict[str, Any]) -> None:
    """Temperatures, clocks and throttle reasons seen at the start and end of each process."""
    states = [
        (t.result["_gpu"].get("start", {}), t.result["_gpu"].get("end", {})) for t in ok if t.result
    ]
    temps = [
        s.get("temperature_c")
        for pair in states
        for s in pair
        if s.get("temperature_c") is not None
    ]
    clocks = [
        s.get("sm_clock_mhz") for pair in states for s in pair if s.get("sm_clock_mhz") is not None
    ]
    reasons = sorted({r for pair in states for s in pair for r in s.get("throttle_reasons", [])})
    if temps:
        print(
            f"- GPU state: temperature {min(temps)}-{max(temps)} C, SM clock {min(clocks)}-{max(clocks)} MHz, "
            f"throttle reasons seen: {', '.join(reasons) or 'none'}"
        )
    else:
        print(f"- GPU state: NVML {g.get('nvml', 'unavailable')}")


def _run_rounds(
    args: argparse.Namespace, model: list[str], extra: list[str], out: Path | None, began: float
) -> tuple[list[Trial], int]:
    """Fresh processes of both variants, order alternating per round, within the budget."""
    trials: list[Trial] = []
    rounds = 0
    while rounds < args.processes:
        if rounds >= args.min_processes and time.time() - began > args.budget_s:
            break
        order = ["plain", "padded"] if rounds % 2 == 0 else ["padded", "plain"]
        for variant in order:
            trial = run_trial(args.python, variant, model, extra, out, len(trials) + 1)
            trials.append(trial)
            status = "ok" if trial.result else f"FAILED {trial.error}"
            print(
                f"[gpu_check] round {rounds + 1} {variant}: {trial.wall_s:.1f} s {status}",
                file=sys.stderr,
            )
        rounds += 1
    return trials, rounds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=5, help="fresh processes per variant")
    ap.add_argument(
        "--min-processes", type=int, default=4, help="keep going past the budget until this many"
    )
    ap.add_argument(
        "--budget-s", type=float, default=230.0, help="start no new round after this long"
    )
    ap.add_argument("--trials", type=int, default=30, help="timed calls per batch size per process")
    ap.add_argument(
        "--python", default=sys.executable, help="interpreter with torch and transformers"
    )
    ap.add_argument("--cpu", action="store_true", help="force the small CPU model")
    ap.add_argument(
        "--no-graphs",
        dest="graphs",
        action="store_false",
        help="skip the informational CUDA-graph process",
    )
    ap.add_argument(
        "--out", default=os.environ.get("OUT", ""), help="folder for the raw JSON lines and logs"
    )
    args = ap.parse_args(argv)
    began = time.time()
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    gpu = not args.cpu and has_cuda(args.python)
    model = GPU_MODEL if gpu else CPU_MODEL
    extra = ["--trials-per-process", str(args.trials), "--seed", "0"] + (
        [] if gpu else ["--device", "cpu"]
    )
    print(
        f"[gpu_check] {'CUDA' if gpu else 'no GPU: CPU dry run'}; model {' '.join(model)}",
        file=sys.stderr,
    )

    # The first process after idle meets a cold GPU: measured, reported, kept out of the stats.
    cold = run_trial(args.python, "plain", model, extra, out, 0)
    trials, rounds = _run_rounds(args, model, extra, out, began)

    # One informational process replaying CUDA graphs (does capture work on this stack?).
    graphs = (
        run_trial(args.python, "graphs", model, extra, out, len(trials) + 1)
        if gpu and args.graphs
        else None
    )

    ok = [t for t in trials if t.result is not None]
    failed = [t for t in trials if t.result is None]
    mem_key = "peak_mem_mib" if gpu else "peak_rss_mib"
    rows = {"bs1": Summary("BS=1"), "bs8": Summary("BS=8"), "pad": Summary("BS=1 padded to 8")}
    for t in ok:
        r = t.result
        assert r is not None
        if t.variant == "plain":
            rows["bs1"].medians.append(r["latency_ms_bs1_p50"])
            rows["bs8"].medians.append(r["latency_ms_bs8_p50"])
            rows["bs1"].peak_mib.append(r.get(f"{mem_key}_bs1", r.get(mem_key, float("nan"))))
            rows["bs8"].peak_mib.append(r.get(f"{mem_key}_bs8", r.get(mem_key, float("nan"))))
        else:
            rows["pad"].medians.append(r["latency_ms_bs1_p50"])
            rows["pad"].peak_mib.append(r.get(f"{mem_key}_bs1", r.get(mem_key, float("nan"))))

    first: dict[str, Any] = (ok[0].result if ok else None) or cold.result or {}
    g, env = first.get("_gpu", {}), first.get("_env", {})
    card = g.get("name") or g.get("torch_name") or "CPU"
    print(f"## Harness GPU check: {card}\n")
    print(
        f"- device: {card}; driver {g.get('driver', '-')}, CUDA {g.get('cuda_runtime', '-')}, "
        f"cuDNN {g.get('cudnn', '-')}; torch {env.get('torch', '-')}, transformers {env.get('transformers', '-')}, "
        f"Python {env.get('python', '-')}"
    )
    print(
        f"- model: `{' '.join(model)}`; {args.trials} timed calls per batch size per process; "
        f"{rounds} rounds of fresh processes, variant order alternating; {len(failed)} failed\n"
    )
    print(
        f"| variant | per-process median latency (ms) | median (ms) | spread between processes | peak memory (MiB, {mem_key}) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for row in rows.values():
        if row.medians:
            print(
                f"| {row.label} | {_fmt(row.medians, 3)} | {statistics.median(row.medians):.3f} | "
                f"{spread_pct(row.medians):.1f}% | {statistics.median(row.peak_mib):.0f} |"
            )
    print()
    plain, pad = rows["bs1"].medians, rows["pad"].medians
    if len(plain) >= 2 and len(pad) >= 2:
        u, p = mann_whitney(pad, plain)
        ratio = statistics.median(pad) / statistics.median(plain)
        verdict = "significant" if p < 0.05 else "NOT significant"
        print(
            f"- padded vs unpadded BS=1: {ratio:.2f}x the median; Mann-Whitney U={u:.0f}, "
            f"p={p:.4f} (n={len(pad)}, {len(plain)} per-process medians): **{verdict}** at 0.05"
        )
    if rows["bs8"].medians and plain:
        print(
            f"- BS=8 vs BS=1: {statistics.median(rows['bs8'].medians) / statistics.median(plain):.2f}x the median latency"
        )

    _print_overheads(ok)
    if cold.result and plain:
        c = cold.result["latency_ms_bs1_p50"]
        print(
            f"- first (cold) process, not in the table: BS=1 median {c:.3f} ms "
            f"({100 * (c / statistics.median(plain) - 1):+.1f}% vs the warm median), wall {cold.wall_s:.1f} s"
        )
    elif cold.error:
        print(f"- first (cold) process failed: {cold.error}")
    if gpu:
        _print_gpu_state(ok, g)
    if graphs is not None and graphs.result:
        r = graphs.result
        print(
            f"- one process with --cuda-graphs (informational): BS=1 median {r['latency_ms_bs1_p50']:.3f} ms, "
            f"BS=8 median {r['latency_ms_bs8_p50']:.3f} ms"
        )
    elif graphs is not None:
        print(f"- one process with --cuda-graphs (informational) failed: {graphs.error}")
    for t in failed:
        print(f"- failed {t.variant}: {t.error}")
    print(f"- total wall time of the check: {time.time() - began:.0f} s")
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
