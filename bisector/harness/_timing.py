"""Timing one model call the way a GPU must be timed.

CUDA: events recorded around the call on the current stream and synchronized after it,
so calls never queue behind each other and the figure is the device time of one
request. CPU: ``time.perf_counter``. Warm-up runs until the timings settle (or a cap).
Inputs rotate through a few prepared batches, so no cache sees the same tensor twice
in a row. With CUDA graphs, the call is captured once and replayed; the next input is
copied into the graph's static buffers before the start event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bisector.harness._model import call_model
from bisector.harness._stats import settled


@dataclass(frozen=True)
class WarmupPolicy:
    minimum: int
    maximum: int
    window: int
    tolerance: float
    max_seconds: float


@dataclass
class Measurement:
    samples_ms: list[float]
    warmup_calls: int
    warmup_settled: bool
    first_sample_unix: float


def make_timer(torch: Any, device: Any) -> Callable[[Callable[[], Any]], float]:
    """A function that runs a callable once and returns its latency in milliseconds."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def cuda_time(fn: Callable[[], Any]) -> float:
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return cuda_time

    def cpu_time(fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return cpu_time


class EagerCall:
    """Calls the model on the prepared input of the current index."""

    def __init__(self, model: Any, inputs: list[Any]) -> None:
        self.model, self.inputs, self.current = model, inputs, inputs[0]

    def prepare(self, index: int) -> None:
        self.current = self.inputs[index % len(self.inputs)]

    def run(self) -> Any:
        return call_model(self.model, self.current)


class GraphCall:
    """Replays a CUDA graph of the model call over static input buffers."""

    def __init__(self, torch: Any, model: Any, inputs: list[Any]) -> None:
        self.torch, self.inputs = torch, inputs
        self.static = _clone(torch, inputs[0])
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # capture needs allocations and lazy inits done first
                call_model(model, self.static)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = call_model(model, self.static)
        torch.cuda.synchronize()

    def prepare(self, index: int) -> None:
        _copy_into(self.torch, self.static, self.inputs[index % len(self.inputs)])

    def run(self) -> Any:
        self.graph.replay()
        return self.output


def _clone(torch: Any, inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.clone()
    if isinstance(inputs, dict):
        return {k: _clone(torch, v) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_clone(torch, v) for v in inputs)
    return inputs


def _copy_into(torch: Any, static: Any, new: Any) -> None:
    if isinstance(static, torch.Tensor):
        static.copy_(new, non_blocking=True)
    elif isinstance(static, dict):
        for k, v in static.items():
            _copy_into(torch, v, new[k])
    elif isinstance(static, (tuple, list)):
        for s, n in zip(static, new, strict=True):
            _copy_into(torch, s, n)


def measure(
    call: EagerCall | GraphCall,
    rotate: int,
    timer: Callable[[Callable[[], Any]], float],
    warmup: WarmupPolicy,
    trials: int,
) -> Measurement:
    """Warm up until settled, then time `trials` calls over rotating inputs."""
    history: list[float] = []
    began = time.perf_counter()
    calls = 0
    is_settled = False
    while calls < warmup.maximum:
        if calls >= warmup.minimum:
            is_settled = settled(history, warmup.window, warmup.tolerance)
            if is_settled or time.perf_counter() - began > warmup.max_seconds:
                break
        call.prepare(calls % rotate)
        history.append(timer(call.run))
        calls += 1
    first_sample_unix = time.time()
    samples = []
    for k in range(trials):
        call.prepare((calls + k) % rotate)
        samples.append(timer(call.run))
    return Measurement(samples, calls, is_settled, first_sample_unix)
