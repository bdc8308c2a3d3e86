"""Preload and harness-build bench (issue 15): every ratio from one run, on this machine.

1. Launch to first sample of the harness (tiny llama, CPU) in fresh processes ("cold")
   and in processes forked from a preload server (`benchmark.preload: [torch,
   transformers, transformers.models.llama.modeling_llama]`), alternating; and the
   between-process spread of the per-process median latency under each (independence:
   a forked trial must still be an independent draw).
2. The harness's model build: the per-trial `build_s` cold vs preloaded, and in one warm
   process today's construction (`AutoModelForCausalLM.from_config`, the library's init)
   vs the new one (init skipped, one seeded fill) for the tiny model and a wider one.
3. A whole `bisector run` (the harness on a factory repository with a planted
   over-padding commit, local builder, CPU) without and with `benchmark.preload: [torch]`.

Usage (repository root): ``PYTHONPATH=. python bench/preload_bench.py [--processes 6]
[--skip-run]``. Prints Markdown for bench/RESULTS.md. Needs torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bisector.engine.runner import run_trial  # noqa: E402
from bisector.ports import BuiltEnv, TrialResult  # noqa: E402
from bisector.preload import PreloadPool  # noqa: E402

TINY = "--arch llama --layers 2 --hidden 256 --heads 4 --intermediate 688 --vocab 1024 --seq 64"
HARNESS = [
    "-m",
    "bisector.bench",
    *TINY.split(),
    *"--dtype float32 --attn sdpa --batch-sizes 1 --trials-per-process 30 --threads 1".split(),
]
PRELOAD = ["torch", "transformers", "transformers.models.llama.modeling_llama"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _trial(launch: Any, work: Path, n: int) -> tuple[float, dict[str, Any]]:
    """Launch-to-first-sample (s) and the protocol object of one harness trial."""
    launched = time.time()
    result: TrialResult = launch(
        [sys.executable, *HARNESS],
        cwd=work,
        env=_env(),
        timeout_s=300.0,
        stdout_path=work / f"trial-{n}.out",
        stderr_path=work / f"trial-{n}.err",
        grace_s=2.0,
    )
    if not result.ok:
        raise SystemExit(f"trial {n} failed: {result.reason}; see {result.stderr_path}")
    data = json.loads(result.stdout_path.read_text().strip().splitlines()[-1])
    return data["_run"]["timings"]["first_sample_unix"] - launched, data


def _spread(medians: list[float]) -> float:
    return (max(medians) - min(medians)) / statistics.median(medians)


def startup_and_spread(processes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"cold": [], "preloaded": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with PreloadPool(PRELOAD, repo_root=work / "none", log_dir=work / "logs") as pool:
            forked = pool.launcher(BuiltEnv("bench", Path(sys.executable), work))
            t0 = time.monotonic()
            _trial(forked, work, 0)  # starts the server: paid once per environment
            out["server_start_s"] = time.monotonic() - t0
            for i in range(processes):
                order = ("cold", "preloaded") if i % 2 == 0 else ("preloaded", "cold")
                for kind in order:
                    launch = run_trial if kind == "cold" else forked
                    first, data = _trial(launch, work, 2 * i + 1 + (kind == "preloaded"))
                    timings = data["_run"]["timings"]
                    out[kind].append(
                        {
                            "first_sample_s": first,
                            "median_ms": data["latency_ms_bs1_p50"],
                            "build_s": timings["build_s"],
                            "import_s": timings.get("import_torch_s", 0)
                            + timings.get("import_transformers_s", 0),
                            "import_model_s": timings.get("import_model_s", 0),
                        }
                    )
    return out


def warm_builds() -> list[tuple[str, float, float]]:
    """(model, today's construction s, new construction s), medians of 3 in this process."""
    import torch
    import transformers

    from bisector.harness import _model

    torch.set_num_threads(1)  # as the harness trials here (--threads 1)
    rows = []
    for label, extra in (("tiny llama (2x256)", {}), ("llama 4x1024, vocab 32000", {"wide": 1})):
        opts: dict[str, Any] = dict(
            arch="llama", layers=2, hidden=256, heads=4, intermediate=688, vocab=1024, seq=64
        )
        if extra:
            opts.update(layers=4, hidden=1024, heads=16, intermediate=2816, vocab=32000)
        opts.update(new_tokens=0, kv_heads=None, model_config=None, dtype="float32")
        opts.update(attn="sdpa", seed=0)
        _model.from_transformers(torch, opts, torch.device("cpu"))  # imports out of the way
        config = transformers.AutoConfig.for_model(
            "llama", **_model._config_kwargs(transformers, opts)
        )
        old, new = [], []
        for _ in range(3):
            t = time.perf_counter()
            with torch.device("cpu"):
                transformers.AutoModelForCausalLM.from_config(
                    config, dtype=torch.float32, attn_implementation="sdpa"
                )
            old.append(time.perf_counter() - t)
            t = time.perf_counter()
            _model.from_transformers(torch, opts, torch.device("cpu"))
            new.append(time.perf_counter() - t)
        rows.append((label, statistics.median(old), statistics.median(new)))
    return rows


def whole_run() -> dict[str, float]:
    """Wall time of the same `bisector run` without and with preload."""
    from bisector.engine.pipeline import RunRequest, run_bisection
    from bisector.testing.gitutil import commit, make_repo
    from tests.test_bench_harness import SERVING_MODEL
    from tests.test_run_harness import BATCHING, CONFIG

    walls: dict[str, float] = {}
    os.environ["PYTHONPATH"] = _env()["PYTHONPATH"]
    for kind, config in (
        ("cold", CONFIG),
        ("preloaded", CONFIG.replace("benchmark:\n", "benchmark:\n  preload: [torch]\n")),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            repo = make_repo(Path(tmp) / "serving")
            files: dict[str, str | bytes | None] = {
                "serving_model.py": SERVING_MODEL,
                "serving_batching.py": BATCHING.format(target=1),
                "configs/serving.yaml": "batching:\n  target_batch: 8\n",
                "bisector.yaml": config,
            }
            commit(repo, files, "Initial serving stack", tag="v1.0.0")
            for i in range(1, 7):
                changed: dict[str, str | bytes | None] = {"notes.txt": f"change {i}\n"}
                if i == 4:
                    changed["serving_batching.py"] = BATCHING.format(target=8)
                commit(repo, changed, f"Change {i}")
            commit(repo, {"notes.txt": "release\n"}, "Release", tag="v1.1.0")
            t0 = time.monotonic()
            doc = run_bisection(RunRequest(good="v1.0.0", bad="v1.1.0", repo=repo)).document
            walls[kind] = time.monotonic() - t0
            data = doc.to_json()
            walls[f"{kind}_found"] = float(data["status"] == "found")
            walls[f"{kind}_measurements"] = float(data["measurements"])
    return walls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--skip-run", action="store_true", help="leave out the whole bisection")
    args = parser.parse_args()
    t0 = time.monotonic()
    s = startup_and_spread(args.processes)
    med = {k: statistics.median(r["first_sample_s"] for r in s[k]) for k in ("cold", "preloaded")}
    build = {k: statistics.median(r["build_s"] for r in s[k]) for k in ("cold", "preloaded")}
    print(f"- {args.processes} cold and {args.processes} forked harness processes, alternating")
    print("\n| | cold | preloaded | ratio |\n| --- | --- | --- | --- |")
    print(
        f"| launch to first sample, median (s) | {med['cold']:.2f} | {med['preloaded']:.2f}"
        f" | {med['preloaded'] / med['cold']:.3f}x |"
    )
    print(
        f"| harness build_s per trial, median (s) | {build['cold']:.2f} | {build['preloaded']:.3f}"
        f" | {build['preloaded'] / build['cold']:.3f}x |"
    )
    for k in ("cold", "preloaded"):
        meds = [r["median_ms"] for r in s[k]]
        print(
            f"| {k}: per-process median latency (ms) | "
            + " ".join(f"{m:.3f}" for m in meds)
            + f" | spread {_spread(meds):.1%} | sd {statistics.stdev(meds):.3f} |"
        )
    print(f"\n- preload server start (once per environment): {s['server_start_s']:.1f} s")
    print(
        "- cold per-trial phases (median s): imports "
        f"{statistics.median(r['import_s'] for r in s['cold']):.2f}, modeling-code import "
        f"{statistics.median(r['import_model_s'] for r in s['cold']):.2f}"
    )
    print("\n| model build in a warm process (CPU) | today (s) | new (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for label, old, new in warm_builds():
        print(f"| {label} | {old:.3f} | {new:.3f} | {new / old:.2f}x |")
    if not args.skip_run:
        w = whole_run()
        print(
            f"\n- whole `bisector run` (harness, factory repo, 8 commits): cold {w['cold']:.1f} s "
            f"({w['cold_measurements']:.0f} trials, found={bool(w['cold_found'])}), preloaded "
            f"{w['preloaded']:.1f} s ({w['preloaded_measurements']:.0f} trials, "
            f"found={bool(w['preloaded_found'])}): {w['preloaded'] / w['cold']:.2f}x"
        )
    print(f"- bench wall time: {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
