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
from bisector.harness._options import BenchOptions
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
    device = torch.device(name)
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
    timings: dict[str, Any] = {
        "process_start_unix": process_start_unix(),
        "harness_start_unix": harness_start_unix,
        **import_s,
    }
    import torch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = select_device(torch, opts.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)

    gpu: dict[str, Any] = {}
    nvml: _gpu_state.Nvml | None = None
    if cuda:
        gpu.update(_gpu_state.torch_gpu_facts(torch, device))
        nvml = _gpu_state.Nvml(gpu.get("torch_uuid"), device.index or 0)
        gpu.update(nvml.static())
        gpu["start"] = nvml.sample()

    options = opts.as_json()
    t0 = time.perf_counter()
    if opts.factory:
        workload = _model.from_factory(torch, opts.factory, options, device)
    else:
        workload = _model.from_transformers(torch, options, device)
    timings["build_s"] = round(time.perf_counter() - t0, 3)
    log(f"{workload.source} on {device}, {opts.dtype}, attn={opts.attn}")

    metrics: dict[str, Any] = {}
    run_meta: dict[str, Any] = {"options": options, "timings": timings, "warmup": {}}
    timer = _timing.make_timer(torch, device)
    policy = _timing.WarmupPolicy(
        opts.warmup_min,
        opts.warmup_max,
        opts.warmup_window,
        opts.warmup_tolerance,
        opts.warmup_max_s,
    )
    use_graphs = opts.cuda_graphs and cuda
    if opts.cuda_graphs and not cuda:
        run_meta["cuda_graphs"] = "ignored: not on CUDA"
    peak_alloc, peak_reserved = 0.0, 0.0

    def batch(bs: int, index: int) -> Any:
        inputs = workload.build_inputs(bs, index)
        if opts.pad_to:
            inputs = _model.pad_batch(torch, inputs, bs, opts.pad_to, workload.pad_token_id)
        if use_graphs and isinstance(inputs, dict) and workload.pad_token_id is not None:
            # An all-ones mask makes transformers check it on the host: no graph capture.
            mask = inputs.get("attention_mask")
            if mask is not None and bool(mask.all()):
                inputs = {k: v for k, v in inputs.items() if k != "attention_mask"}
        return _model.to_device(torch, inputs, device)

    def reset_memory() -> None:
        gc.collect()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)

    def read_memory(suffix: str) -> None:
        nonlocal peak_alloc, peak_reserved
        if cuda:
            alloc, reserved = (
                torch.cuda.max_memory_allocated(device),
                torch.cuda.max_memory_reserved(device),
            )
            metrics[f"peak_mem_mib{suffix}"] = _mib(alloc)
            metrics[f"reserved_mem_mib{suffix}"] = _mib(reserved)
            peak_alloc, peak_reserved = max(peak_alloc, alloc), max(peak_reserved, reserved)

    first_sample: float | None = None
    with torch.inference_mode():
        for bs in opts.batch_sizes:
            reset_memory()
            inputs = [batch(bs, i) for i in range(opts.rotate)]
            call: _timing.EagerCall | _timing.GraphCall
            call = (
                _timing.GraphCall(torch, workload.model, inputs)
                if use_graphs
                else _timing.EagerCall(workload.model, inputs)
            )
            m = _timing.measure(call, opts.rotate, timer, policy, opts.trials_per_process)
            first_sample = first_sample or m.first_sample_unix
            run_meta["warmup"][f"bs{bs}"] = {"calls": m.warmup_calls, "settled": m.warmup_settled}
            _latency_metrics(metrics, f"latency_ms_bs{bs}", m.samples_ms)
            median_s = percentile(m.samples_ms, 50) / 1e3
            metrics[f"throughput_rps_bs{bs}"] = round(bs / median_s, 4)
            metrics[f"tokens_per_s_bs{bs}"] = round(bs * opts.seq / median_s, 2)
            read_memory(f"_bs{bs}")
            log(
                f"bs={bs}: p50 {percentile(m.samples_ms, 50):.3f} ms after {m.warmup_calls} warm-up calls"
            )
            del call, inputs
        metrics["latency_ms"] = metrics[f"latency_ms_bs{opts.batch_sizes[0]}"]
        metrics["tokens_per_s"] = metrics[f"tokens_per_s_bs{max(opts.batch_sizes)}"]

        if opts.new_tokens:
            _generation(torch, opts, workload, batch, timer, metrics, reset_memory, read_memory)

        if opts.reference_out or opts.reference_in:
            logits = []
            for i in range(opts.reference_inputs):
                out = _model.call_model(
                    workload.model, batch(opts.reference_batch, _model.REFERENCE_INDEX_BASE + i)
                )
                logits.append(_model.logits_of(torch, out)[: opts.reference_batch].float().cpu())
            if opts.reference_out:
                meta = {"options": options, "torch": torch.__version__, "device": str(device)}
                _agreement.save_reference(torch, opts.reference_out, logits, meta)
                run_meta["reference_out"] = opts.reference_out
            else:
                assert opts.reference_in is not None
                metrics.update(
                    _agreement.compare(
                        torch, _agreement.load_reference(torch, opts.reference_in), logits
                    )
                )

    if opts.tokenizer:
        from bisector.harness._tokens import tokens_per_input

        metrics["tokens_per_input"] = round(
            tokens_per_input(opts.tokenizer, opts.tokenizer_texts), 4
        )

    if cuda:
        metrics["peak_mem_mib"] = _mib(peak_alloc)
        metrics["reserved_mem_mib"] = _mib(peak_reserved)
        assert nvml is not None
        used = nvml.used_mib()
        if used is not None:
            metrics["nvml_used_mib"] = round(used, 2)
        gpu["end"] = nvml.sample()
    else:
        metrics["peak_rss_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 2
        )

    timings["first_sample_unix"] = first_sample
    now = time.time()
    start = timings["process_start_unix"] or harness_start_unix
    if first_sample is not None:
        timings["start_to_first_sample_s"] = round(first_sample - start, 3)
    timings["total_s"] = round(now - start, 3)
    metrics["_gpu"] = gpu or {"device": "cpu"}
    metrics["_env"] = _gpu_state.runtime_facts(torch, device)
    metrics["_run"] = run_meta
    return metrics


def _generation(
    torch: Any,
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
