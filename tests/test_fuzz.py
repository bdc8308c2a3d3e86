"""Fuzz: any bisector.yaml, benchmark output or command line ends in a result or one `error:` line, never a traceback (item 19)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bisector.config import Config, parse_config
from bisector.engine.runner import parse_output
from bisector.errors import ConfigError
from bisector.testing.sample import SampleRepo

from .conftest import run_cli, tree_digest

KEYS = [
    "benchmark",
    "command",
    "timeout",
    "repeats",
    "min",
    "max",
    "env",
    "metrics",
    "latency_ms",
    "direction",
    "threshold",
    "environment",
    "builder",
    "docker",
    "network",
    "daemon",
    "schedule",
    "metrics_port",
    "alerts",
    "webhook",
    "retries",
    "rollback",
    "target",
    "health_check",
    "snapshots",
    "store",
    "configs",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**420), max_value=10**420),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "lower",
            "higher",
            "5%",
            "nan%",
            "30s",
            "-1s",
            "1e999",
            ".nan",
            "* * * * *",
            "",
            "\x00",
            "[/]",
        ]
    ),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
VALID = {
    "benchmark": {"command": ["python", "bench.py"]},
    "metrics": {"latency_ms": {"direction": "lower"}},
}


def _parses_or_refuses(text: str) -> None:
    try:
        assert isinstance(parse_config(text), Config)
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message.strip() or exc.message


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
@example({"timeout": 10**401})
@example(
    {"timeout": float("nan"), "command": [""], "env": {"A=B": "\x00"}, "threshold": float("nan")}
)
def test_any_yaml_document_is_a_config_or_a_config_error(doc: object) -> None:
    """Any YAML document, alone or merged into a valid config, parses to a Config or raises ConfigError only."""
    _parses_or_refuses(yaml.safe_dump(doc))
    if isinstance(doc, dict):
        for section in ("benchmark", "metrics", "daemon", "environment", "rollback"):
            _parses_or_refuses(yaml.safe_dump({**VALID, section: doc}))


@settings(max_examples=150, deadline=2000)
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    """Arbitrary text as bisector.yaml parses or raises ConfigError, nothing else."""
    _parses_or_refuses(text)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=2000)
@given(
    st.dictionaries(st.text(max_size=8), JSON, max_size=6),
    st.text(max_size=200),
    st.integers(0, 3000),
)
def test_any_benchmark_output_parses_or_is_ignored(
    data: dict[str, object], noise: str, depth: int
) -> None:
    """Benchmark stdout (JSON of any shape and size of number, noise, deep nesting) gives metrics of finite floats or None."""
    line = json.dumps(data)
    deep = '{"x": ' + "[" * depth + "]" * depth + "}"
    for stdout in (line, f"{noise}\n{line}", f"{line}\n{noise}", deep, noise):
        parsed = parse_output(stdout)
        if parsed is not None:
            metrics, meta = parsed
            assert all(isinstance(v, float) for samples in metrics.values() for v in samples)
            json.dumps(meta)  # what is kept can be journaled


# --- every command with hostile arguments -------------------------------------------

REFS = [
    "--upload-pack=x",
    "-x",
    "HEAD~99999",
    "",
    "v2.3.0..v2.4.0",
    "refs/../../etc",
    "ré𝔣\u200b",
    "a" * 5000,
    "@{-1}",
    ":/fix",
]
FAST = [
    ("run", "--good", "--upload-pack=touch /tmp/pwned", "--bad", "v2.4.0"),
    ("run", "--good", "v2.3.0", "--bad", "HEAD~99999"),
    ("snapshot", "show", "ré𝔣\u200b"),
    ("rollback", "--to", "-x", "--yes"),
    ("report", "../../etc/passwd"),
    ("config", "--good", "/proc/self/status", "--bad", "/etc/hostname"),
    ("deps", "--good-lock", "/proc/nope", "--bad-lock", "/etc/hostname"),
    ("cache", "list", "--builder", "nope"),
]
SLOW = [
    *[("run", "--good", ref, "--bad", "v2.4.0") for ref in REFS],
    *[("snapshot", "take", ref) for ref in REFS],
    *[("snapshot", "diff", ref, "v2.4.0") for ref in REFS],
    *[("rollback", "--to", ref, "--dry-run") for ref in REFS],
    ("run", "--good", "v2.3.0", "--bad", "v2.4.0", "--builder", "x"),
    ("run", "--good", "v2.3.0", "--bad", "v2.4.0", "--metric", "[/]nope"),
    ("run", "--good", "v2.3.0", "--bad", "v2.4.0", "--report-dir", "/proc/x"),
    ("run", "--good", "v2.4.0", "--bad", "v2.3.0", "--jobs", "0"),
    ("report", "x", "--format", "pdf"),
    ("rollback", "--to", "v2.3.0", "--timeout", "nan", "--dry-run"),
    ("rollback", "--to", "v2.3.0", "--target", "/proc/x", "--dry-run"),
    ("config", "--good", "/nonexistent", "--bad", "/etc/hostname"),
    (
        "config",
        "isolate",
        "--good",
        "/dev/null",
        "--bad",
        "/dev/null",
        "--target",
        "configs/model.yaml",
    ),
    ("config", "check", "--config", "/proc/self/environ"),
    ("config", "check", "--config", "/"),
    ("status", "--config", "/dev/null"),
    ("pause", "--config", "/etc/passwd"),
    ("resume", "--repo", "/proc/nope"),
    ("daemon", "--once", "--config", "/dev/zero"),
    ("cache", "prune", "--keep", "-1"),
    ("snapshot", "list", "--repo", "/proc/nope"),
    ("demo", "--workdir", "/proc/nope"),
]


@pytest.fixture(scope="module")
def hostile_repo(tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    """One small sim repository shared by the table (commands that exit 2 change nothing)."""
    from bisector.testing.sample import SampleSpec, build_sample_repo

    return build_sample_repo(
        tmp_path_factory.mktemp("fuzz") / "repo", SampleSpec(n_commits=6, culprit=3, noise=0.0)
    )


def _check(repo: SampleRepo, args: tuple[str, ...]) -> None:
    live = Path(repo.path.parent / "repo-live")
    store, before_live = tree_digest(repo.path / ".bisector"), tree_digest(live)
    cfg = (repo.path / "bisector.yaml").read_bytes()
    has_repo = "--repo" in args or args[0] == "demo"
    done = run_cli(*args, *(() if has_repo else ("--repo", str(repo.path))), timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode in {0, 2, 3, 4, 5}, out
    assert "Traceback" not in out, out
    if done.returncode != 0:
        assert sum(line.lower().startswith("error:") for line in out.splitlines()) == 1, out
    if done.returncode == 2:
        assert tree_digest(live) == before_live
        assert (repo.path / "bisector.yaml").read_bytes() == cfg
        if args[0] not in ("snapshot", "run", "daemon"):  # these may have taken snapshots first
            after = tree_digest(repo.path / ".bisector")
            # Opening the store may create its empty databases; nothing stored is changed.
            assert {k: after.get(k) for k in store} == store


@pytest.mark.parametrize("args", FAST, ids=lambda a: " ".join(a)[:40])
def test_hostile_arguments_fast(hostile_repo: SampleRepo, args: tuple[str, ...]) -> None:
    """A handful of hostile command lines: exit in {0,2,3,4,5}, no traceback, one `error:` line, nothing changed on 2."""
    _check(hostile_repo, args)


@pytest.mark.slow
@pytest.mark.parametrize("args", SLOW, ids=lambda a: " ".join(a)[:40])
def test_hostile_arguments_every_command(hostile_repo: SampleRepo, args: tuple[str, ...]) -> None:
    """Every command with hostile refs, paths and options: the same promises as the fast table."""
    _check(hostile_repo, args)
