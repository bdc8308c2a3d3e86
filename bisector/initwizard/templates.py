"""The benchmark templates `bisector init --bench python|harness` writes.

Both speak the benchmark protocol (docs/benchmark-protocol.md) as they are, so a fresh
`bisector run` works before anything is edited; the places to edit are marked.
"""

from __future__ import annotations

PYTHON_BENCH_FILE = "bisector_bench.py"
HARNESS_FACTORY_FILE = "bisector_factory.py"

PYTHON_BENCH = '''\
"""Benchmark for bisector: one process = one trial (docs/benchmark-protocol.md).

Prints, as its last stdout line, a JSON object of metrics: {"latency_ms": [...]}, one
sample per timed request. Exit 125 means "this revision cannot be tested" (it is
skipped, as in `git bisect run`); any other failure makes the trial fail.
Replace `setup` and `request` with your service's code; keep logs on stderr.
"""

import json
import sys
import time

WARMUP = 5  # untimed requests first: imports, caches and a cold CPU/GPU settle
SAMPLES = 20  # timed requests per process; bisector takes the process's median


def setup():
    """Build what a request needs (model, client, inputs). Runs once, untimed."""
    return list(range(50_000))


def request(state):
    """One request: the work whose latency is judged."""
    sorted(state, reverse=True)


def main():
    try:
        state = setup()
    except ImportError as exc:  # e.g. a module this revision does not have yet
        print(f"cannot set up the benchmark here: {exc}", file=sys.stderr)
        return 125
    for _ in range(WARMUP):
        request(state)
    samples = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        request(state)
        samples.append((time.perf_counter() - t0) * 1000.0)
    print(json.dumps({"latency_ms": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

HARNESS_FACTORY = '''\
"""Model factory for bisector's harness: `python -m bisector.bench --factory
bisector_factory:build` (`python -m bisector.bench --help` states the contract).

`build` is called with those of these keyword arguments it names: device, dtype, seed,
attn_implementation, seq, vocab, options. It returns (model, input_builder);
input_builder(batch_size, index) returns the model's inputs for `batch_size` requests
(a dict of keyword arguments, a tensor, or a tuple of positional arguments) and must be
the same for the same index. Replace the toy model with your own model and inputs, built
through your service's code (its batcher, its preprocessing) so its regressions show.
"""

import torch


class ToyModel(torch.nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.body = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU())
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, input_ids):
        return self.head(self.body(self.embed(input_ids)))


def build(device, dtype, seed, seq, vocab):
    torch.manual_seed(seed)
    model = ToyModel(vocab, 128).to(device=device, dtype=dtype)

    def input_builder(batch_size, index):
        gen = torch.Generator().manual_seed(seed * 100_003 + index)
        ids = torch.randint(0, vocab, (batch_size, seq), generator=gen)
        return {"input_ids": ids}

    return model, input_builder
'''
