"""What a sample serving repository holds: its spec, and the files it writes.

`bisector.testing.sample` commits these files into a history; this module only knows
their contents (the service's code, configs, pins, bisector.yaml, local wheels) as
functions of a `SampleSpec` and the state of the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bisector.testing.wheels import make_wheel

AUTHOR = ("Sample Dev", "dev@example.org")
TEMPLATE = Path(__file__).with_name("sample_repo")
# 2025-12-31T21:00Z: after make_repo's four git calls (an hour each), the first commit is
# dated 2026-01-01T03:00Z, so the demo's commit ids stay the ones it always had.
START = 1_767_214_800
RELEASES = ("v2.3.0", "v2.3.1", "v2.3.2", "v2.3.3", "v2.4.0")

CulpritKind = Literal["code", "dependency", "config"]


@dataclass(frozen=True)
class SampleSpec:
    """What to generate. Commit indices count first-parent commits after the root (1-based)."""

    n_commits: int = 40
    culprit: int = 27
    kind: CulpritKind = "code"
    slowdown: float = 0.30  # relative latency increase at batch size 1
    base_ms: float = 20.0
    noise: float = 0.05
    untestable: tuple[int, ...] = ()
    merges: bool = False  # land every 6th change as a 2-commit feature branch merged --no-ff
    culprit_in_branch: bool = False  # with merges: plant the culprit inside a feature branch
    mode: Literal["sim", "real"] = "sim"
    builder: Literal["local", "venv", "docker"] = "local"
    samples_per_process: int = 10
    repeats: tuple[int, int] = (4, 12)
    releases: tuple[str, ...] = RELEASES
    extra_yaml: str = ""
    # Isolation cases (issue 5); the defaults keep the single-change culprits above.
    culprit_deps: Literal["fastpad", "three", "pair"] = "fastpad"  # with kind="dependency":
    # fastpad 1.0.0 -> 1.3.0 | + quickjson, tracelite upgrades (fast) | hotpath + coldpath
    # upgrades that are slow only together, + quickjson
    culprit_keys: Literal["one", "three"] = (
        "one"  # with kind="config": + server.port, logging.format
    )
    effect_flag: str = ""  # a file path; while it holds "off" the benchmark reports the good cost
    # a file path: the benchmark's noise is seeded by a count kept there (one more per
    # process), so a test's noisy run takes the same trials every time ("" = unseeded)
    seed_file: str = ""
    deps_file: Literal["requirements", "pyproject"] = "requirements"  # where the pins are declared:
    # requirements.txt, or pyproject.toml's [project].dependencies (with comments, one per line)
    second_step: int = 0  # a second code regression at this commit index (0: none), after `culprit`
    second_slowdown: float = 0.15  # relative to the latency after the first step


@dataclass
class SampleRepo:
    path: Path
    spec: SampleSpec
    commits: list[str] = field(default_factory=list)  # first-parent, oldest first, root first
    tags: dict[str, str] = field(default_factory=dict)
    culprit: str = ""  # the commit that introduced the regression (may sit in a branch)
    culprit_first_parent: str = ""  # the first-parent commit that brought it to main
    culprit_subject: str = ""
    second_culprit: str = ""  # with SampleSpec.second_step: the commit of the second step
    untestable: list[str] = field(default_factory=list)
    wheelhouse: Path | None = None
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # tag -> file model


# --- the files, as a model -------------------------------------------------------------

SERVING_YAML: dict[str, Any] = {
    "server": {"workers": 4, "port": 8080},
    "batching": {"dynamic": True, "target_batch": 8, "pad_to_target": False, "timeout_ms": 5},
    "logging": {"level": "info"},
}
MODEL_YAML: dict[str, Any] = {
    "model": {"name": "tiny-lm", "dtype": "bfloat16"},
    "quantization": {"bits": 16},
}
REQUIREMENTS: dict[str, str] = {"fastpad": "1.0.0", "tokenkit": "2.1.0", "servekit": "0.9.1"}

# Extra packages and the culprit's upgrades of the isolation cases (SampleSpec.culprit_deps).
EXTRA_REQUIREMENTS: dict[str, dict[str, str]] = {
    "fastpad": {},
    "three": {"quickjson": "1.0.0", "tracelite": "0.4.0"},
    "pair": {"hotpath": "1.0.0", "coldpath": "1.0.0", "quickjson": "1.0.0"},
}
CULPRIT_UPGRADES: dict[str, dict[str, str]] = {
    "fastpad": {"fastpad": "1.3.0"},
    "three": {"fastpad": "1.3.0", "quickjson": "1.1.0", "tracelite": "0.5.0"},
    "pair": {"hotpath": "2.0.0", "coldpath": "2.0.0", "quickjson": "1.1.0"},
}
CULPRIT_KEYS: dict[str, dict[str, Any]] = {
    "one": {"batching.pad_to_target": True},
    "three": {"batching.pad_to_target": True, "server.port": 8081, "logging.format": "json"},
}

# Release-to-release changes that are not the culprit (they must not matter).
RELEASE_CHANGES: dict[str, list[tuple[str, str, Any]]] = {
    "v2.3.1": [("serving", "logging.level", "warning")],
    "v2.3.2": [("req", "tokenkit", "2.1.1"), ("serving", "server.workers", 8)],
    "v2.3.3": [("serving", "batching.timeout_ms", 10), ("req", "servekit", "1.0.0")],
    "v2.4.0": [("model", "model.dtype", "float16"), ("req", "tokenkit", "2.2.0")],
}


def set_key(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        tree = tree.setdefault(p, {})
    tree[parts[-1]] = value


_DEPS_FILES = {"requirements": "requirements.txt", "pyproject": "pyproject.toml"}


def pyproject(reqs: Mapping[str, str]) -> str:
    """The service's pyproject.toml: pins in [project].dependencies, with comments around."""
    pins = "".join(f'    "{n}=={v}",  # pinned\n' for n, v in sorted(reqs.items()))
    return (
        "[project]\n"
        'name = "sample-serving"  # not installed: the benchmark runs from the checkout\n'
        'version = "2.3.0"\n'
        "dependencies = [\n"
        "    # serving stack pins (bump one per line)\n" + pins + "]\n\n"
        "[tool.sample]\n"
        'dependencies = ["not-a-project-dependency==0"]\n'
    )


def yaml(tree: Mapping[str, Any], indent: int = 0) -> str:
    lines: list[str] = []
    for key, value in tree.items():
        pad = " " * indent
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key}:")
            lines.append(yaml(value, indent + 2).rstrip("\n"))
        else:
            text = (
                {True: "true", False: "false"}.get(value, value)
                if isinstance(value, bool)
                else value
            )
            lines.append(f"{pad}{key}: {text}")
    return "\n".join(lines) + "\n"


def _pair_overhead(spec: SampleSpec) -> str:
    """Lines of `_package_overhead` for the pair case: slow only when both are fused."""
    if spec.culprit_deps != "pair":
        return "    return fastpad.OVERHEAD\n\n\n"
    return (
        "    overhead = fastpad.OVERHEAD\n"
        "    import coldpath\n"
        "    import hotpath\n"
        "    if hotpath.FUSED and coldpath.FUSED:\n"
        f"        overhead *= {1.0 + spec.slowdown!r}\n"
        "    return overhead\n\n\n"
    )


def infer_py(spec: SampleSpec, *, pad_code: bool, untestable: bool, second: bool = False) -> str:
    per_item = spec.slowdown * spec.base_ms / (7.0 - spec.slowdown)
    base = spec.base_ms - per_item
    # the second step (SampleSpec.second_step): a fixed cost on top of the padded request
    extra = spec.second_slowdown * (base + per_item * 8) if second else 0.0
    extra_line = f"EXTRA_MS = {extra!r}\n" if spec.second_step else ""
    extra_add = " + EXTRA_MS" if spec.second_step else ""
    pad_line = (
        "    padded = max(batch_size, cfg['batching']['target_batch'])  # pad to the target batch\n"
        if pad_code
        else "    padded = batch_size\n"
    )
    return (
        '"""Inference path of the sample service: the cost of one request, in ms."""\n\n'
        "import time\n\n"
        f"UNTESTABLE = {untestable}\n"
        f"BASE_MS = {base!r}\n"
        f"PER_ITEM_MS = {per_item!r}\n" + extra_line + "\n\n"
        "def _package_overhead():\n"
        "    try:\n"
        "        import fastpad\n"
        "    except ImportError:\n"
        "        return 1.0\n"
        + _pair_overhead(spec)
        + "def request_cost_ms(batch_size, cfg):\n"
        + pad_line
        + "    if cfg['batching'].get('pad_to_target'):\n"
        "        padded = max(padded, cfg['batching']['target_batch'])\n"
        f"    return (BASE_MS + PER_ITEM_MS * padded) * _package_overhead(){extra_add}\n\n\n"
        "def run(batch_size, cfg):\n"
        "    end = time.perf_counter() + request_cost_ms(batch_size, cfg) / 1000.0\n"
        "    x = 0\n"
        "    while time.perf_counter() < end:\n"
        "        x += 1\n"
        "    return x\n\n\n"
        "def accuracy(model_cfg):\n"
        "    return {16: 0.912, 8: 0.905, 4: 0.752}.get(model_cfg['quantization']['bits'], 0.5)\n"
    )


def bisector_yaml(spec: SampleSpec, root: Path, wheelhouse: Path | None) -> str:
    env_lines = [f"  builder: {spec.builder}", f"  requirements: [{_DEPS_FILES[spec.deps_file]}]"]
    if wheelhouse is not None:
        env_lines += [f"  find_links: [{str(wheelhouse)!r}]", "  no_index: true"]
    return (
        "# bisector configuration of the sample serving repository\n"
        "benchmark:\n"
        "  command: [python, bench.py]\n"
        "  timeout: 60s\n"
        f"  repeats: {{min: {spec.repeats[0]}, max: {spec.repeats[1]}}}\n"
        "  env:\n"
        f"    SAMPLE_MODE: {spec.mode}\n"
        f"    SAMPLE_NOISE: {spec.noise!r}\n"
        f"    SAMPLE_SAMPLES: {spec.samples_per_process!r}\n"
        + (f"    SAMPLE_EFFECT_FLAG: {spec.effect_flag!r}\n" if spec.effect_flag else "")
        + (f"    SAMPLE_SEED_FILE: {spec.seed_file!r}\n" if spec.seed_file else "")
        + "metrics:\n"
        "  latency_ms: {direction: lower, threshold: 5%}\n"
        "  accuracy: {direction: higher, threshold: 0.01}\n"
        "environment:\n" + "\n".join(env_lines) + "\n"
        "snapshots:\n"
        '  configs: ["configs/**/*.yaml"]\n'
        "  store: .bisector\n"
        "rollback:\n"
        f"  target: {str(root.parent / (root.name + '-live'))!r}\n"
        "  timeout: 30s\n" + spec.extra_yaml
    )


def fastpad_wheels(wheelhouse: Path, slowdown: float) -> None:
    """fastpad 1.0.0 .. 1.3.0; 1.2.0 is the first slow one (for version bisection)."""

    for version, overhead in (
        ("1.0.0", 1.0),
        ("1.1.0", 1.0),
        ("1.2.0", 1.0 + slowdown),
        ("1.3.0", 1.0 + slowdown),
    ):
        make_wheel(
            wheelhouse,
            "fastpad",
            version,
            {"fastpad/__init__.py": f"OVERHEAD = {overhead!r}\n"},
            [],
        )
    for name, versions in (
        ("tokenkit", ("2.1.0", "2.1.1", "2.2.0")),
        ("servekit", ("0.9.1", "1.0.0")),
        ("quickjson", ("1.0.0", "1.1.0")),
        ("tracelite", ("0.4.0", "0.5.0")),
    ):
        for version in versions:
            module = name + "/__init__.py"
            make_wheel(wheelhouse, name, version, {module: f"VERSION = {version!r}\n"}, [])
    for name in ("hotpath", "coldpath"):  # slow only together (SampleSpec.culprit_deps="pair")
        for version, fused in (("1.0.0", False), ("2.0.0", True)):
            make_wheel(
                wheelhouse, name, version, {name + "/__init__.py": f"FUSED = {fused!r}\n"}, []
            )
