"""A real bisection on a GPU: `bisector run` whose benchmark is the harness.

Builds a small serving repository whose model factory is a Llama-style transformers
model (random weights) and whose batcher, at one commit, pads every request to the
target batch size (the dynamic-batching regression). Then runs
`python -m bisector run --good v1.0.0 --bad v1.1.0 --json` with the local builder and
prints the answer, the steps and the wall time. On a machine without CUDA it runs the
same on a tiny model (a dry run).

    python bench/gpu_bisect.py [--work DIR] [--commits 6] [--culprit 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bisector.testing import gitutil  # noqa: E402

MODEL = """
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from serving_batching import pad_to_target

SIZES = {sizes}


def build(device, dtype, seed, seq, attn_implementation):
    cfg = LlamaConfig(vocab_size=SIZES["vocab"], hidden_size=SIZES["hidden"],
                      intermediate_size=SIZES["intermediate"], num_hidden_layers=SIZES["layers"],
                      num_attention_heads=SIZES["heads"], num_key_value_heads=SIZES["heads"],
                      max_position_embeddings=max(seq, 128), bos_token_id=1, eos_token_id=2,
                      pad_token_id=0)
    cfg._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    model = model.to(device=device, dtype=dtype).eval()

    def inputs(batch_size, index):
        gen = torch.Generator().manual_seed(seed + 7919 * index + batch_size)
        ids = torch.randint(3, SIZES["vocab"], (batch_size, seq), generator=gen)
        return {{"input_ids": pad_to_target(ids).to(device)}}

    return model, inputs
"""

BATCHING = (
    "import torch\n\nTARGET = {target}\n\n\ndef pad_to_target(ids):\n"
    "    # dynamic batching: fill the batch up to TARGET rows\n"
    "    extra = max(0, TARGET - ids.shape[0])\n"
    "    return torch.cat([ids, ids[:1].expand(extra, -1)]) if extra else ids\n"
)

CONFIG = """\
benchmark:
  command: [python, -m, bisector.bench, --factory, "serving_model:build", --seq, "{seq}",
            --batch-sizes, "1", --dtype, {dtype}, --attn, sdpa, --trials-per-process, "30"]
  timeout: 180s
  repeats: {{min: 3, max: 6}}
metrics:
  latency_ms_bs1: {{direction: lower, threshold: 10%}}
environment:
  builder: local
snapshots:
  configs: ["configs/*.yaml"]
"""

GPU = {"layers": 8, "hidden": 2048, "intermediate": 5632, "heads": 16, "vocab": 32000}
CPU = {"layers": 2, "hidden": 128, "intermediate": 256, "heads": 4, "vocab": 512}


def make_repo(repo: Path, *, gpu: bool, commits: int, culprit: int) -> str:
    gitutil.make_repo(repo)
    sizes = GPU if gpu else CPU
    (repo / "serving_model.py").write_text(MODEL.format(sizes=sizes))
    (repo / "serving_batching.py").write_text(BATCHING.format(target=1))
    (repo / "configs").mkdir()
    (repo / "configs/serving.yaml").write_text("batching:\n  target_batch: 8\n")
    (repo / "bisector.yaml").write_text(
        CONFIG.format(seq=512 if gpu else 32, dtype="bfloat16" if gpu else "float32")
    )
    (repo / ".gitignore").write_text(".bisector/\n__pycache__/\n")
    gitutil.commit_all(repo, "Serving stack", "v1.0.0")
    planted = ""
    for i in range(1, commits + 1):
        (repo / "notes.txt").write_text(f"change {i}\n")
        subject = f"Change {i}"
        if i == culprit:
            (repo / "serving_batching.py").write_text(BATCHING.format(target=8))
            subject = "Pad requests to the target batch size"
        sha = gitutil.commit_all(repo, subject)
        if i == culprit:
            planted = sha
    gitutil.tag(repo, "v1.1.0")
    return planted


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--commits", type=int, default=6)
    ap.add_argument("--culprit", type=int, default=4)
    ap.add_argument("--cpu", action="store_true", help="force the tiny CPU model")
    args = ap.parse_args()
    try:
        import torch

        gpu = torch.cuda.is_available() and not args.cpu
        device = torch.cuda.get_device_name(0) if gpu else "cpu"
    except ImportError:
        gpu, device = False, "cpu (no torch)"
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-bisect-"))
    repo = work / "serving"
    planted = make_repo(repo, gpu=gpu, commits=args.commits, culprit=args.culprit)
    t0 = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bisector",
            "run",
            "--good",
            "v1.0.0",
            "--bad",
            "v1.1.0",
            "--json",
            "--repo",
            str(repo),
        ],
        capture_output=True,
        text=True,
        timeout=3000,
    )
    wall = time.monotonic() - t0
    sys.stderr.write(done.stderr[-4000:])
    if not done.stdout.strip():
        print(f"bisector run failed (exit {done.returncode})")
        return 1
    doc = json.loads(done.stdout)
    culprit = (doc.get("culprit") or {}).get("commit")
    print(f"## GPU bisection ({device})\n")
    print(
        f"- repository: {args.commits} commits between v1.0.0 and v1.1.0, planted culprit #{args.culprit} "
        f"`{planted[:10]}`; model {'Llama-style ' + str(GPU) if gpu else 'tiny ' + str(CPU)}, "
        f"BS=1, seq {512 if gpu else 32}"
    )
    print(
        f"- exit {done.returncode}, status `{doc['status']}`, culprit `{str(culprit)[:10]}` "
        f"({'right' if culprit == planted else 'WRONG'}), effect "
        f"{(doc.get('culprit') or {}).get('effect')}, confidence {(doc.get('culprit') or {}).get('confidence')}"
    )
    print(
        f"- good {doc['good']['value']:.3f} ms, bad {doc['bad']['value']:.3f} ms; "
        f"{doc['measurements']} benchmark processes, wall {wall:.0f} s\n"
    )
    print(
        "| step | phase | commit | verdict | processes | median ms |\n| --- | --- | --- | --- | --- | --- |"
    )
    for i, s in enumerate(doc["steps"], 1):
        med = f"{s['median']:.3f}" if s.get("median") is not None else "-"
        print(
            f"| {i} | {s['phase']} | `{s['commit'][:10]}` | {s['verdict']} | {s['samples']} | {med} |"
        )
    return 0 if culprit == planted else 1


if __name__ == "__main__":
    sys.exit(main())
