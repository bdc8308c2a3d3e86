"""Benchmark of the sample serving stack (speaks bisector's benchmark protocol).

Runs the inference path at batch size 1 several times in this process and prints one
JSON line: {"latency_ms": [...], "accuracy": x}. SAMPLE_MODE=real times actual CPU
work; SAMPLE_MODE=sim (the default in tests) draws latencies around the cost the code
and configs imply, with SAMPLE_NOISE relative noise, so tests are fast and the truth
still comes from the repository's content.
"""

import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serving import infer
from serving.config import load


def _next_seed(path):
    """The count kept at `path`, then one more there (None: no file, an unseeded draw)."""
    if not path:
        return None
    count = int(open(path).read() or 0) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(count + 1))
    return count


def main() -> int:
    if infer.UNTESTABLE:
        print("this revision cannot be built: missing kernel", file=sys.stderr)
        return 125
    cfg = load("configs/serving.yaml")
    model_cfg = load("configs/model.yaml")
    mode = os.environ.get("SAMPLE_MODE", "sim")
    noise = float(os.environ.get("SAMPLE_NOISE", "0.05"))
    n = int(os.environ.get("SAMPLE_SAMPLES", "10"))
    cost = infer.request_cost_ms(1, cfg)
    flag = os.environ.get("SAMPLE_EFFECT_FLAG")
    said = open(flag).read().strip() if flag and os.path.exists(flag) else ""
    if said == "off":
        cost = infer.BASE_MS + infer.PER_ITEM_MS  # the effect is gone: the good cost
    elif said == "faster" and cost > infer.BASE_MS + infer.PER_ITEM_MS:
        cost = 0.8 * (
            infer.BASE_MS + infer.PER_ITEM_MS
        )  # the effect turned around: faster than good
    samples = []
    if mode == "real":
        for _ in range(3):
            infer.run(1, cfg)  # warm-up
        for _ in range(n):
            t0 = time.perf_counter()
            infer.run(1, cfg)
            samples.append((time.perf_counter() - t0) * 1000.0)
    else:
        rng = random.Random(_next_seed(os.environ.get("SAMPLE_SEED_FILE")))
        process_offset = rng.gauss(0.0, noise / 2)  # between-process noise, as on GPUs
        for _ in range(n):
            samples.append(max(0.01, cost * (1.0 + process_offset + rng.gauss(0.0, noise))))
    accuracy = infer.accuracy(model_cfg)
    print(f"median {statistics.median(samples):.2f} ms", file=sys.stderr)
    print(json.dumps({"latency_ms": samples, "accuracy": accuracy}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
