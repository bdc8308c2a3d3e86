"""`bisector bench`: the benchmark harness for PyTorch / transformers models.

It runs *inside* each step's environment (``python -m bisector.bench``), so it imports
only the standard library, torch, transformers and, when present, nvidia-ml-py
(``pynvml``) -- never bisector's other modules or their dependencies. Importing this
package imports no torch; the work happens in ``bisector.harness.__main__``.

Output, per the benchmark protocol (shared/DESIGN.md): the LAST line of stdout is one
JSON object mapping a metric name to a number or to a list of numbers (samples from
this process). Everything else goes to stderr. Exit 0 is a measurement, exit 2 bad
options, exit 1 a failed trial.

Metrics (``B`` is each batch size of ``--batch-sizes``):

``latency_ms_bsB``
    list of per-call latencies (ms) of one forward pass at batch size B, after warm-up.
``latency_ms``
    the same list for the first batch size given (so ``metrics: latency_ms`` just works).
``latency_ms_bsB_p50`` / ``_p95`` / ``_p99``
    percentiles of those samples (p50 is this process's median).
``throughput_rps_bsB``, ``tokens_per_s_bsB``
    requests/s and input tokens/s at the median latency (real requests only: rows added
    by ``--pad-to`` do not count). ``tokens_per_s`` is that of the largest batch size.
``gen_latency_ms_bsB``, ``gen_tokens_per_s_bsB``
    with ``--new-tokens N``: greedy generation of N tokens, latency and new tokens/s.
``peak_mem_mib[_bsB]``, ``reserved_mem_mib[_bsB]``, ``nvml_used_mib``
    CUDA only: torch's peak allocated / reserved memory (per batch size, and the max),
    and NVML's device-wide used memory at the end.
``peak_rss_mib``
    CPU only: peak resident set size of the process.
``agreement_cosine``, ``agreement_max_abs``, ``top1_agreement``
    with ``--reference-in``: mean per-token cosine of the logits, max absolute
    difference, and the fraction of tokens whose argmax agrees with the reference.
``tokens_per_input``
    with ``--tokenizer``: mean number of tokens per text of the fixed text set.

Keys that start with ``_`` are metadata, NOT metrics; consumers must skip them:
``_gpu`` (NVML / CUDA state: name, UUID, driver, CUDA and cuDNN versions, SM and memory
clocks, temperature, power, throttle reasons, at start and at end), ``_env`` (Python,
torch, transformers versions, device, threads) and ``_run`` (the options, warm-up
counts, phase timings and the wall-clock time of the first sample).
"""

from __future__ import annotations

__all__ = ["PROTOCOL_METADATA_PREFIX"]

#: A key of the output object that starts with this is metadata, not a metric.
PROTOCOL_METADATA_PREFIX = "_"
