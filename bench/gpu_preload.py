"""GPU check of `benchmark.preload`: launch to first sample, cold vs forked from a server.

Drives the preload server (`bisector/preload/_server.py`) directly over its JSON-lines
protocol, so it needs only the standard library here and torch + transformers in the
interpreter given; alternates fresh `python -m bisector.bench` processes ("cold") with
trials forked from one server that preloaded torch, transformers and the llama modeling
code. Prints a Markdown table: launch to first sample, the build phases, the per-process
median latency and its spread under each (a forked trial must stay an independent
draw), and whether the server had CUDA initialised before forking (it must not).
Without a GPU it runs the small CPU model (a dry run).

Usage (repository root): ``PYTHONPATH=. python bench/gpu_preload.py --python python3``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER = REPO_ROOT / "bisector" / "preload" / "_server.py"
GPU_MODEL = "--arch llama --layers 16 --hidden 2048 --heads 16 --intermediate 5632 --vocab 32000 --seq 512 --dtype bfloat16 --attn sdpa"
CPU_MODEL = "--arch llama --layers 2 --hidden 256 --heads 4 --intermediate 688 --vocab 1024 --seq 64 --dtype float32 --attn sdpa"
PRELOAD = ["torch", "transformers", "transformers.models.llama.modeling_llama"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


class Server:
    """The preload server over its pipes (what bisector.preload.server does, minimal)."""

    def __init__(self, python: str, log: Path) -> None:
        argv = [python, str(SERVER)]
        for module in PRELOAD:
            argv += ["--module", module]
        with log.open("wb") as err:
            self.proc = subprocess.Popen(  # fixed argv
                argv,
                env=_env(),
                cwd="/",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        self.ready = self.read(600)

    def read(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            raise SystemExit("preload server: no answer")
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("preload server exited")
        message: dict[str, Any] = json.loads(line)
        return message

    def run(self, args: list[str], cwd: Path, out: Path, err: Path) -> int:
        assert self.proc.stdin is not None
        request = {
            "op": "run",
            "argv": args,
            "cwd": str(cwd),
            "env": _env(),
            "stdout": str(out),
            "stderr": str(err),
        }
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        started = self.read(60)
        if started.get("event") != "started":
            raise SystemExit(f"preload server refused: {started}")
        return int(self.read(600)["status"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _result(code: int, out: Path, err: Path, launched: float) -> dict[str, Any]:
    if code != 0:
        raise SystemExit(f"trial failed (exit {code}): {err.read_text()[-2000:]}")
    data: dict[str, Any] = json.loads(out.read_text().strip().splitlines()[-1])
    timings = data["_run"]["timings"]
    return {
        "first_s": timings["first_sample_unix"] - launched,
        "build_s": timings["build_s"],
        "import_model_s": timings.get("import_model_s", 0.0),
        "construct_s": timings.get("construct_s", 0.0),
        "fill_s": timings.get("fill_s", 0.0),
        "imports_s": timings.get("import_torch_s", 0.0) + timings.get("import_transformers_s", 0.0),
        "median_ms": data["latency_ms_p50"]
        if "latency_ms_p50" in data
        else statistics.median(data["latency_ms"]),
        "device": data.get("_gpu", {}).get("name") or data.get("_env", {}).get("device"),
    }


def _med(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--processes", type=int, default=3, help="trials of each kind")
    ap.add_argument("--budget-s", type=float, default=80.0, help="no new pair after this long")
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args()
    began = time.time()
    probe = subprocess.run(  # fixed argv
        [args.python, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    cuda = probe.stdout.strip() == "True" and not args.cpu
    model = (GPU_MODEL if cuda else CPU_MODEL).split()
    bench = ["-m", "bisector.bench", *model, "--batch-sizes", "8", "--trials-per-process", "20"]
    rows: dict[str, list[dict[str, Any]]] = {"cold": [], "preloaded": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(os.environ["OUT"]) / "preload" if os.environ.get("OUT") else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        server = Server(args.python, work / "preload-server.log")
        server_s = time.time() - t0
        if server.ready.get("event") != "ready":
            print(f"preload server failed: {server.ready}")
            return 1
        try:
            for i in range(args.processes):
                if i >= 2 and time.time() - began > args.budget_s:
                    break
                for kind in ("cold", "preloaded") if i % 2 == 0 else ("preloaded", "cold"):
                    out, err = work / f"{kind}-{i}.out", work / f"{kind}-{i}.err"
                    launched = time.time()
                    if kind == "cold":
                        with out.open("wb") as o, err.open("wb") as e:
                            code = subprocess.run(  # fixed argv
                                [args.python, *bench],
                                cwd=work,
                                env=_env(),
                                stdout=o,
                                stderr=e,
                                timeout=600,
                            ).returncode
                    else:
                        code = server.run(bench, work, out, err)
                    rows[kind].append(_result(code, out, err, launched))
        finally:
            server.close()
    cold, warm = rows["cold"], rows["preloaded"]
    print(f"\n### Preload check ({cold[0]['device']}, {'GPU model' if cuda else 'CPU dry run'})\n")
    print(
        f"- model: `{' '.join(model)}` at BS=8; {len(cold)} cold and {len(warm)} forked processes, alternating"
    )
    print(
        f"- preload server: ready in {server_s:.1f} s (once per environment); "
        f"CUDA initialised in the server before forking: {server.ready.get('cuda_initialized')}; "
        f"CUDA driver library mapped in the server: {server.ready.get('cuda_driver_loaded')}; "
        f"native threads in the server at fork: {server.ready.get('native_threads')}"
    )
    print("\n| | cold | preloaded | ratio |\n| --- | --- | --- | --- |")
    for label, key in (
        ("launch to first sample (s)", "first_s"),
        ("imports in the trial (s)", "imports_s"),
        ("build_s (s)", "build_s"),
        ("  of which modeling-code import (s)", "import_model_s"),
        ("  construct (s)", "construct_s"),
        ("  seeded fill (s)", "fill_s"),
    ):
        c, w = _med(cold, key), _med(warm, key)
        print(f"| {label} | {c:.3f} | {w:.3f} | {w / c if c else float('nan'):.3f}x |")
    for kind, rs in rows.items():
        meds = [r["median_ms"] for r in rs]
        spread = (max(meds) - min(meds)) / statistics.median(meds)
        print(
            f"| {kind}: per-process median ms (BS=8) | {' '.join(f'{m:.3f}' for m in meds)} | spread {spread:.1%} | |"
        )
    print(f"\n- wall time of the preload check: {time.time() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
