"""One harness process: build the workload, measure it, collect the metrics."""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bisector.harness import _agreement, _gpu_state, _model, _timing
from bisector.harness._options import BenchOptions, OptionsError
from bisector.harness._stats import percentile


def log(message: str) -> None:
    """Progress for humans: stderr only (stdout's last line is the protocol's)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def process_start_unix() -> float | None:
    """When this process started (Linux /proc), to measure the harness's own overhead."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return None


def select_device(torch: Any, name: str) -> Any:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise OptionsError(f"--device {name}: not a device (auto, cpu, cuda, cuda:N)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise _model.ModelError(f"--device {name}: CUDA is not available")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _mib(n: float) -> float:
    return round(n / 2**20, 2)


def _latency_metrics(metrics: dict[str, Any], key: str, samples: list[float]) -> None:
    metrics[key] = [round(s, 5) for s in samples]
    for q in (50, 95, 99):
        metrics[f"{key}_p{q}"] = round(percentile(samples, q), 5)


def run(
    opts: BenchOptions, harness_start_unix: float, import_s: dict[str, float]
) -> dict[str, Any]:
    """Measure the configured workload; returns the protocol's object (metrics + metadata).

    `import_s` holds how long the caller took to import torch and transformers.
    """
    import torch

    session = _Session(torch, opts, harness_start_unix, import_s)
    with torch.inference_mode():
        session.measure_batches()
        if opts.new_tokens:
            _generation(
                opts,
                session.workload,
                session.batch,
                session.timer,
                session.metrics,
                session.reset_memory,
                session.read_memory,
            )
        if opts.reference_out or opts.reference_in:
            session.reference()
    if opts.tokenizer:
        from bisector.harness._tokens import tokens_per_input

        session.metrics["tokens_per_input"] = round(
            tokens_per_input(opts.tokenizer, opts.tokenizer_texts), 4
        )
    return session.finish()


class _Session:
    """One process's measurement: device, workload, timer, and what it has found so far.

    A class rather than one long function so each phase (set-up, batches, reference,
    memory, metadata) reads on its own; the state they share lives here.
    """

    def __init__(
        self,
        torch: Any,
        opts: BenchOptions,
        harness_start_unix: float,
        import_s: dict[str, float],
    ) -> None:
        self.torch, self.opts, self.harness_start_unix = torch, opts, harness_start_unix
        self.timings: dict[str, Any] = {
            "process_start_unix": process_start_unix(),
            "harness_start_unix": harness_start_unix,
            **import_s,
        }
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.device = select_device(torch, opts.device)
        self.cuda = self.device.type == "cuda"
        self.gpu: dict[str, Any] = {}
        self.nvml: _gpu_state.Nvml | None = None
        if self.cuda:
            torch.cuda.set_device(self.device)
            self.gpu.update(_gpu_state.torch_gpu_facts(torch, self.device))
            self.nvml = _gpu_state.Nvml(self.gpu.get("torch_uuid"), self.device.index or 0)
            self.gpu.update(self.nvml.static())
            self.gpu["start"] = self.nvml.sample()

        self.options = opts.as_json()
        t0 = time.perf_counter()
        if opts.factory:
            self.workload = _model.from_factory(torch, opts.factory, self.options, self.device)
        else:
            self.workload = _model.from_transformers(torch, self.options, self.device)
        self.timings["build_s"] = round(time.perf_counter() - t0, 3)
        self.timings.update(self.workload.phases)
        log(f"{self.workload.source} on {self.device}, {opts.dtype}, attn={opts.attn}")

        self.metrics: dict[str, Any] = {}
        self.run_meta: dict[str, Any] = {
            "options": self.options,
            "timings": self.timings,
            "warmup": {},
        }
        self.timer = _timing.make_timer(torch, self.device)
        self.policy = _timing.WarmupPolicy(
            opts.warmup_min,
            opts.warmup_max,
            opts.warmup_window,
            opts.warmup_tolerance,
            opts.warmup_max_s,
        )
        self.use_graphs = opts.cuda_graphs and self.cuda
        if opts.cuda_graphs and not self.cuda:
            self.run_meta["cuda_graphs"] = "ignored: not on CUDA"
        self.peak_alloc, self.peak_reserved = 0.0, 0.0
        self.first_sample: float | None = None

    def batch(self, bs: int, index: int) -> Any:
        inputs = self.workload.build_inputs(bs, index)
        if self.opts.pad_to:
            inputs = _model.pad_batch(
                self.torch, inputs, bs, self.opts.pad_to, self.workload.pad_token_id
            )
        if self.use_graphs and isinstance(inputs, dict) and self.workload.pad_token_id is not None:
            # An all-ones mask makes transformers check it on the host: no graph capture.
            mask = inputs.get("attention_mask")
            if mask is not None and bool(mask.all()):
                inputs = {k: v for k, v in inputs.items() if k != "attention_mask"}
        return _model.to_device(self.torch, inputs, self.device)

    def reset_memory(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats(self.device)

    def read_memory(self, suffix: str) -> None:
        if self.cuda:
            alloc = self.torch.cuda.max_memory_allocated(self.device)
            reserved = self.torch.cuda.max_memory_reserved(self.device)
            self.metrics[f"peak_mem_mib{suffix}"] = _mib(alloc)
            self.metrics[f"reserved_mem_mib{suffix}"] = _mib(reserved)
            self.peak_alloc = max(self.peak_alloc, alloc)
            self.peak_reserved = max(self.peak_reserved, reserved)

    def measure_batches(self) -> None:
        opts, metrics = self.opts, self.metrics
        for bs in opts.batch_sizes:
            self.reset_memory()
            inputs = [self.batch(bs, i) for i in range(opts.rotate)]
            call: _timing.EagerCall | _timing.GraphCall
            call = (
                _timing.GraphCall(self.torch, self.workload.model, inputs)
                if self.use_graphs
                else _timing.EagerCall(self.workload.model, inputs)
            )
            m = _timing.measure(call, opts.rotate, self.timer, self.policy, opts.trials_per_process)
            self.first_sample = self.first_sample or m.first_sample_unix
            self.run_meta["warmup"][f"bs{bs}"] = {
                "calls": m.warmup_calls,
                "settled": m.warmup_settled,
            }
            _latency_metrics(metrics, f"latency_ms_bs{bs}", m.samples_ms)
            median_s = percentile(m.samples_ms, 50) / 1e3
            metrics[f"throughput_rps_bs{bs}"] = round(bs / median_s, 4)
            metrics[f"tokens_per_s_bs{bs}"] = round(bs * opts.seq / median_s, 2)
            self.read_memory(f"_bs{bs}")
            log(
                f"bs={bs}: p50 {percentile(m.samples_ms, 50):.3f} ms after {m.warmup_calls} warm-up calls"
            )
            del call, inputs
        metrics["latency_ms"] = metrics[f"latency_ms_bs{opts.batch_sizes[0]}"]
        metrics["tokens_per_s"] = metrics[f"tokens_per_s_bs{max(opts.batch_sizes)}"]

    def reference(self) -> None:
        """Write reference logits (--reference-out) or compare with them (--reference-in)."""
        torch, opts = self.torch, self.opts
        logits = []
        for i in range(opts.reference_inputs):
            out = _model.call_model(
                self.workload.model,
                self.batch(opts.reference_batch, _model.REFERENCE_INDEX_BASE + i),
            )
            logits.append(_model.logits_of(torch, out)[: opts.reference_batch].float().cpu())
        if opts.reference_out:
            meta = {"options": self.options, "torch": torch.__version__, "device": str(self.device)}
            _agreement.save_reference(torch, opts.reference_out, logits, meta)
            self.run_meta["reference_out"] = opts.reference_out
        else:
            assert opts.reference_in is not None
            reference = _agreement.load_reference(torch, opts.reference_in)
            self.metrics.update(_agreement.compare(torch, reference, logits))

    def finish(self) -> dict[str, Any]:
        """Whole-process memory, timings and the metadata keys; the protocol's object."""
        metrics, timings = self.metrics, self.timings
        if self.cuda:
            metrics["peak_mem_mib"] = _mib(self.peak_alloc)
            metrics["reserved_mem_mib"] = _mib(self.peak_reserved)
            assert self.nvml is not None
            used = self.nvml.used_mib()
            if used is not None:
                metrics["nvml_used_mib"] = round(used, 2)
            self.gpu["end"] = self.nvml.sample()
        else:
            metrics["peak_rss_mib"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 2
            )
        timings["first_sample_unix"] = self.first_sample
        now = time.time()
        start = timings["process_start_unix"] or self.harness_start_unix
        if self.first_sample is not None:
            timings["start_to_first_sample_s"] = round(self.first_sample - start, 3)
        timings["total_s"] = round(now - start, 3)
        metrics["_gpu"] = self.gpu or {"device": "cpu"}
        metrics["_env"] = _gpu_state.runtime_facts(self.torch, self.device)
        metrics["_run"] = self.run_meta
        return metrics


def _generation(
    opts: BenchOptions,
    workload: _model.Workload,
    batch: Any,
    timer: Any,
    metrics: dict[str, Any],
    reset_memory: Any,
    read_memory: Any,
) -> None:
    """Greedy generation of exactly `new_tokens` tokens per row, timed per call."""
    if not workload.generates:
        log("--new-tokens: the model has no generate(); skipped")
        return
    for bs in opts.batch_sizes:
        reset_memory()
        inputs = batch(bs, 0)
        if not isinstance(inputs, dict):
            log("--new-tokens: inputs are not keyword arguments; skipped")
            return
        kwargs = {k: v for k, v in inputs.items() if k != "use_cache"}
        extra = {
            "max_new_tokens": opts.new_tokens,
            "min_new_tokens": opts.new_tokens,
            "do_sample": False,
        }
        if workload.pad_token_id is not None:
            extra["pad_token_id"] = workload.pad_token_id

        def generate(kwargs: dict[str, Any] = kwargs, extra: dict[str, Any] = extra) -> Any:
            return workload.model.generate(**kwargs, **extra)

        timer(generate)  # warm-up: caches and kernels
        samples = [timer(generate) for _ in range(opts.gen_trials)]
        _latency_metrics(metrics, f"gen_latency_ms_bs{bs}", samples)
        metrics[f"gen_tokens_per_s_bs{bs}"] = round(
            bs * opts.new_tokens / (percentile(samples, 50) / 1e3), 2
        )
        read_memory(f"_gen_bs{bs}")
