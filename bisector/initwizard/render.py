"""The commented `bisector.yaml` that `bisector init` writes.

Text, not a YAML dump: the comments are the point (a new user reads this file first),
and every value is written as a JSON scalar, which YAML reads as written whatever the
tag or path holds. `bisector config check` must pass on the result (a test holds it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from bisector.initwizard.detect import Detected
from bisector.initwizard.templates import HARNESS_FACTORY_FILE, PYTHON_BENCH_FILE

BenchKind = Literal["python", "harness"]


def _flow(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def benchmark_command(found: Detected, bench: BenchKind | None) -> list[str]:
    if bench == "harness":
        factory = HARNESS_FACTORY_FILE.removesuffix(".py") + ":build"
        return ["python", "-m", "bisector.bench", "--factory", factory, "--batch-sizes", "1,8"]
    if bench == "python" or found.bench_script is None:
        return ["python", PYTHON_BENCH_FILE]
    return ["python", found.bench_script]


def _header(found: Detected) -> list[str]:
    lines = [
        "# bisector.yaml, written by `bisector init`; every key: docs/config.md.",
        "# `bisector config check` validates it; the store (.bisector/) belongs in .gitignore.",
    ]
    tags = found.release_tags
    if tags:
        shown = ", ".join(tags[-8:])
        more = f" (and {len(tags) - 8} older)" if len(tags) > 8 else ""
        lines.append(f"# Release tags found: {shown}{more}")
        if len(tags) >= 2:
            lines.append(f"#   e.g.  bisector run --good {tags[-2]} --bad {tags[-1]}")
    else:
        lines.append("# No release tags found: pass commits or branches to --good / --bad.")
    if found.dependency_files:
        lines.append(f"# Dependency files found: {', '.join(found.dependency_files)}")
    return [*lines, ""]


def _benchmark(found: Detected, bench: BenchKind | None) -> list[str]:
    lines = [
        "benchmark:",
        "  # Any program that prints a JSON line of metrics as its last stdout line",
        "  # (docs/benchmark-protocol.md); an argv run without a shell in each candidate's",
        "  # checkout, a leading `python` being the candidate environment's interpreter.",
    ]
    if bench is None and found.bench_script is None:
        lines.append(
            f"  # No benchmark found: `bisector init --bench python --force` writes {PYTHON_BENCH_FILE}."
        )
    elif bench == "harness":
        lines.append("  # The built-in PyTorch harness (docs/harness.md) on the model of")
        lines.append(
            f"  # {HARNESS_FACTORY_FILE}; `python -m bisector.bench --help` lists its options."
        )
    lines += [
        f"  command: {_flow(benchmark_command(found, bench))}",
        "  timeout: 300s               # per trial; then its process group is killed",
        "  repeats: {min: 3, max: 15}  # trials per candidate; more only while the verdict is unclear",
    ]
    if bench == "harness":
        lines += [
            "  # Reference outputs made once at the good endpoint and passed to every step,",
            "  # so agreement_cosine / top1_agreement measure accuracy against it.",
            "  reference: auto",
        ]
    return lines


def _metrics(bench: BenchKind | None) -> list[str]:
    lines = [
        "metrics:",
        "  # Names printed by the benchmark; the first is bisected on (`run --metric NAME`).",
        "  # threshold: the smallest change that counts, relative (5%) or absolute (0.01).",
        "  latency_ms: {direction: lower, threshold: 5%}",
    ]
    if bench == "harness":
        lines.append("  agreement_cosine: {direction: higher, threshold: 0.001}")
    return lines


def _environment(found: Detected) -> list[str]:
    lines = [
        "environment:",
        "  # local: each commit runs with this interpreter and its installed packages (fast,",
        "  # but blind to dependency changes); venv: one virtualenv per pinned dependency set;",
        "  # docker: one image per dependency set.",
        "  builder: local",
    ]
    if found.requirements:
        lines.append(f"  requirements: {_flow(found.requirements)}  # read at each commit")
    else:
        lines.append("  requirements: []  # no requirements, pyproject or lock file found")
    return lines


def _snapshots(found: Detected) -> list[str]:
    where = (
        "config files captured, isolated and rolled back"
        if found.config_globs
        else "no config folder found (configs/, config/, conf/, ...)"
    )
    return [
        "snapshots:",
        f"  configs: {_flow(found.config_globs)}  # {where}",
        "  store: .bisector  # journal, snapshots, environments, reports",
    ]


def _rest(found: Detected) -> list[str]:
    branch = (
        [f"  branch: {json.dumps(found.branch)}"]
        + (
            [f"  remote: {json.dumps(found.remote)}  # no local branch: fetched each cycle"]
            if found.remote is not None
            else []
        )
        if found.branch is not None
        # Never a guess: a `main` that does not exist fails only at the daemon's first cycle.
        else [
            "  # branch: SET THIS to the branch the daemon measures: HEAD is detached and no",
            "  # single local branch holds it (left unset, the daemon looks for `main`)",
        ]
    )
    return [
        "rollback:",
        "  # target: /srv/serving/configs  # the live config folder services read",
        "  timeout: 30s",
        "daemon:",
        '  schedule: "0 2 * * *"  # crontab line, host local time',
        *branch,
        "  policy: report          # report | rollback",
        "  metrics_port: 9464      # Prometheus on 127.0.0.1; 0 disables",
    ]


def render_config(found: Detected, bench: BenchKind | None) -> str:
    """The whole file: header comments, then one section per block of docs/config.md."""
    parts = [
        *_header(found),
        *_benchmark(found, bench),
        *_metrics(bench),
        *_environment(found),
        *_snapshots(found),
        *_rest(found),
    ]
    return "\n".join(parts) + "\n"
