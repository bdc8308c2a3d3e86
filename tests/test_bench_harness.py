"""The benchmark harness (`python -m bisector.bench`), run for real on CPU with tiny models.

Runs that need torch use the interpreter named by BISECTOR_TORCH_PYTHON (default: this
one) and are skipped when it cannot import torch and transformers, so the main suite
runs without them.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "bisector" / "harness"
TORCH_PYTHON = os.environ.get("BISECTOR_TORCH_PYTHON", sys.executable)

TINY_GPT2 = [
    "--arch",
    "gpt2",
    "--layers",
    "2",
    "--hidden",
    "64",
    "--heads",
    "2",
    "--vocab",
    "256",
    "--seq",
    "32",
    "--dtype",
    "float32",
    "--attn",
    "eager",
    "--seed",
    "0",
]
FAST = ["--trials-per-process", "12", "--warmup-max", "40", "--threads", "1"]


@functools.cache
def _torch_python_ok() -> bool:
    probe = subprocess.run(  # fixed argv
        [TORCH_PYTHON, "-c", "import torch, transformers"], capture_output=True, timeout=120
    )
    return probe.returncode == 0


needs_torch = pytest.mark.skipif(
    "not _torch_python_ok()", reason=f"{TORCH_PYTHON} cannot import torch and transformers"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    return env


def run_bench(
    args: list[str], cwd: Path, python: str = TORCH_PYTHON
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # fixed interpreter, argv of our own
        [python, "-m", "bisector.bench", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def bench_json(args: list[str], cwd: Path) -> dict[str, Any]:
    proc = run_bench(args, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One tiny GPT-2 run at BS=1 and BS=8 that saves reference logits."""
    if not _torch_python_ok():
        pytest.skip(f"{TORCH_PYTHON} cannot import torch and transformers")
    work = tmp_path_factory.mktemp("reference")
    ref = work / "ref.pt"
    result = bench_json(
        [*TINY_GPT2, *FAST, "--batch-sizes", "1,8", "--reference-out", str(ref)], work
    )
    return result, ref


@pytest.mark.slow
@needs_torch
def test_protocol_line_has_latency_percentiles_throughput_and_metadata(
    reference_run: tuple[dict[str, Any], Path],
) -> None:
    """The last stdout line maps metric names to numbers or lists, plus `_` metadata."""
    result, ref = reference_run
    for bs in (1, 8):
        samples = result[f"latency_ms_bs{bs}"]
        assert len(samples) == 12 and all(s > 0 for s in samples)
        assert (
            result[f"latency_ms_bs{bs}_p50"]
            <= result[f"latency_ms_bs{bs}_p95"]
            <= result[f"latency_ms_bs{bs}_p99"]
        )
        assert result[f"throughput_rps_bs{bs}"] > 0
        assert result[f"tokens_per_s_bs{bs}"] == pytest.approx(
            result[f"throughput_rps_bs{bs}"] * 32, rel=1e-3
        )
    assert result["latency_ms"] == result["latency_ms_bs1"]
    assert result["peak_rss_mib"] > 0
    for key, value in result.items():
        if not key.startswith("_"):
            assert isinstance(value, (int, float)) or all(
                isinstance(v, (int, float)) for v in value
            ), key
    assert result["_gpu"] == {"device": "cpu"}
    assert (
        result["_env"]["device"] == "cpu"
        and result["_env"]["torch"]
        and result["_env"]["transformers"]
    )
    timings = result["_run"]["timings"]
    assert 0 < timings["start_to_first_sample_s"] <= timings["total_s"]
    assert set(result["_run"]["warmup"]) == {"bs1", "bs8"}
    assert ref.is_file()


@pytest.mark.slow
@needs_torch
def test_reference_round_trip_agrees_and_tokenizer_counts_tokens(
    reference_run: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """Comparing with the saved reference gives cosine ~1 and top-1 1.0; a tokenizer.json is counted."""
    _, ref = reference_run
    make_tok = textwrap.dedent(
        """
        import sys
        from tokenizers import Tokenizer, models, pre_tokenizers
        tok = Tokenizer(models.WordLevel({"[UNK]": 0, "the": 1, "fox": 2}, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.save(sys.argv[1])
        """
    )
    subprocess.run([TORCH_PYTHON, "-c", make_tok, str(tmp_path / "tokenizer.json")], check=True)
    texts = tmp_path / "texts.txt"
    texts.write_text("the fox\nthe quick fox jumps\n", encoding="utf-8")
    result = bench_json(
        [
            *TINY_GPT2,
            *FAST,
            "--batch-sizes",
            "1",
            "--reference-in",
            str(ref),
            "--tokenizer",
            str(tmp_path / "tokenizer.json"),
            "--tokenizer-texts",
            str(texts),
        ],
        tmp_path,
    )
    assert result["agreement_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert result["agreement_max_abs"] < 1e-4
    assert result["top1_agreement"] == 1.0
    assert result["tokens_per_input"] == 3.0  # (2 + 4) / 2


@pytest.mark.slow
@needs_torch
def test_pad_to_8_makes_batch_of_one_slower(tmp_path: Path) -> None:
    """Over-padding a batch of one to 8 rows is measurably slower on CPU (options from a config file)."""
    config = tmp_path / "bench.json"
    config.write_text(
        json.dumps(
            {
                "arch": "llama",
                "layers": 2,
                "hidden": 256,
                "heads": 4,
                "vocab": 512,
                "seq": 64,
                "dtype": "float32",
                "attn": "sdpa",
                "batch-sizes": [1],
                "trials_per_process": 12,
                "threads": 1,
            }
        )
    )
    plain = bench_json(["--config", str(config)], tmp_path)
    padded = bench_json(["--config", str(config), "--pad-to", "8"], tmp_path)
    assert padded["_run"]["options"]["pad_to"] == 8 and plain["_run"]["options"]["pad_to"] is None
    assert padded["latency_ms_bs1_p50"] > 2.0 * plain["latency_ms_bs1_p50"]
    # Padding rows are not requests: throughput counts the one real request.
    assert padded["throughput_rps_bs1"] == pytest.approx(
        1000 / padded["latency_ms_bs1_p50"], rel=1e-3
    )


SERVING_MODEL = """
import torch

from serving_batching import pad_to_target


class TinyLM(torch.nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.body = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(4)])
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, input_ids):
        return self.head(torch.relu(self.body(self.embed(input_ids))))


def build(device, dtype, seed, seq):
    model = TinyLM(512, 512).to(device=device, dtype=dtype)

    def inputs(batch_size, index):
        gen = torch.Generator().manual_seed(seed + 7919 * index + batch_size)
        ids = torch.randint(0, 512, (batch_size, seq), generator=gen)
        return pad_to_target(ids)

    return model, inputs


class Words:
    def encode(self, text):
        return text.split()


def tokenizer():
    return Words()
"""


@pytest.mark.slow
@needs_torch
def test_factory_of_a_serving_repo_shows_its_planted_over_padding(tmp_path: Path) -> None:
    """A `module:function` factory whose own batcher pads to the target batch size is slower at BS=1."""
    results = {}
    for target in (1, 8):
        repo = tmp_path / f"target{target}"
        repo.mkdir()
        (repo / "serving_model.py").write_text(SERVING_MODEL)
        (repo / "serving_batching.py").write_text(
            f"import torch\n\nTARGET = {target}\n\n\ndef pad_to_target(ids):\n"
            "    extra = max(0, TARGET - ids.shape[0])\n"
            "    return torch.cat([ids, ids[:1].expand(extra, -1)]) if extra else ids\n"
        )
        args = [
            "--factory",
            "serving_model:build",
            "--seq",
            "64",
            "--batch-sizes",
            "1",
            *FAST,
            "--tokenizer",
            "serving_model:tokenizer",
        ]
        results[target] = bench_json(args, repo)
    assert results[8]["latency_ms_bs1_p50"] > 2.0 * results[1]["latency_ms_bs1_p50"]
    assert results[1]["tokens_per_input"] > 5
    assert "transformers" in results[1]["_env"]


def test_bad_options_exit_2_without_torch(tmp_path: Path) -> None:
    """Invalid options are refused with exit 2 and one error line, before torch is imported."""
    proc = run_bench(["--batch-sizes", "0,x"], tmp_path, python=sys.executable)
    assert proc.returncode == 2 and proc.stdout == ""
    proc = run_bench(["--factory", "no_colon"], tmp_path, python=sys.executable)
    assert proc.returncode == 2 and "MODULE:FUNCTION" in proc.stderr
    config = tmp_path / "c.json"
    config.write_text('{"layerz": 3}')
    proc = run_bench(["--config", str(config)], tmp_path, python=sys.executable)
    assert proc.returncode == 2 and "layerz" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "config", "said"),
    [
        (["--threads", "-1"], None, "error: --threads must be at least 1"),
        (["--dtype", "int8"], None, "error: argument --dtype: invalid choice: 'int8'"),
        (["--layerz", "3"], None, "error: unrecognized arguments: --layerz 3"),
        ([], '{"cuda_graphs": "false"}', "cuda_graphs: expected true or false, not 'false'"),
        ([], '{"layers": 2.5}', "layers: expected a whole number, not 2.5"),
        ([], '{"warmup_tolerance": "0.1"}', "warmup_tolerance: expected a number, not '0.1'"),
        ([], '{"dtype": "int8"}', "dtype: expected one of float32, float16, bfloat16"),
    ],
)
def test_a_bad_option_or_config_value_is_one_error_line(
    tmp_path: Path, argv: list[str], config: str | None, said: str
) -> None:
    """A trial's reason is the last stderr line: argparse printed its usage first, and a
    --config value was taken as it was written ("false", a true string, for a flag)."""
    if config is not None:
        (tmp_path / "c.json").write_text(config)
        argv = ["--config", str(tmp_path / "c.json"), *argv]
    proc = run_bench(argv, tmp_path, python=sys.executable)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert said in line and line.startswith("error: "), line


ALLOWED_THIRD_PARTY = {"torch", "transformers", "tokenizers", "pynvml"}


def test_harness_imports_only_stdlib_torch_transformers_and_nvml() -> None:
    """The harness runs inside each step's environment: no bisector deps, no other bisector modules."""
    for path in BENCH_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = (
                    top in sys.stdlib_module_names
                    or top in ALLOWED_THIRD_PARTY
                    or name == "bisector.harness"
                    or name.startswith("bisector.harness.")
                    or name == "__future__"
                )
                assert ok, f"{path.name} imports {name}"


def test_importing_the_package_loads_no_torch() -> None:
    """`import bisector.bench` (e.g. from the CLI) pulls in neither torch nor bisector's deps."""
    code = (
        "import sys, bisector.bench, bisector.harness._options; "
        "bad = [m for m in ('torch', 'transformers', 'pydantic', 'yaml') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_torch
def test_a_reference_that_is_not_one_is_a_one_line_error(tmp_path: Path) -> None:
    """A garbage --reference-in: one line naming the file and what torch said, not
    torch's paragraphs (whose first line advises weights_only=False)."""
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("garbage")
    script = textwrap.dedent(
        """
        import sys, torch
        from bisector.harness import _agreement
        try:
            _agreement.load_reference(torch, sys.argv[1])
        except _agreement.ReferenceError as exc:
            print(str(exc))
        """
    )
    done = subprocess.run(
        [TORCH_PYTHON, "-c", script, str(garbage)], capture_output=True, text=True, check=True
    )
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith(f"cannot read reference {garbage} (not one --reference-out wrote?): ")
    assert "weights_only" not in line and "Unsupported operand" in line


@needs_torch
def test_inf_or_nan_logits_are_the_largest_disagreement_the_protocol_takes() -> None:
    """A commit whose logits overflow to inf (or turn NaN) must still print agreement_max_abs
    as a measurement: a float's maximum was dropped by bisector, and the commit that broke
    the outputs read as one that cannot be tested."""
    from bisector.engine.trialreason import as_number

    script = textwrap.dedent(
        """
        import json, torch
        from bisector.harness._agreement import compare
        ref = torch.arange(16, dtype=torch.float32).reshape(1, 2, 8)
        out = {}
        for name, bad in (("inf", float("inf")), ("-inf", float("-inf")), ("nan", float("nan"))):
            broken = ref.clone()
            broken[0, 1, 3] = bad
            out[name] = compare(torch, [ref], [broken])["agreement_max_abs"]
        same = ref.clone()
        same[0, 0, 0] = float("inf")
        out["same inf"] = compare(torch, [same], [same.clone()])["agreement_max_abs"]
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [TORCH_PYTHON, "-c", script], env=_env(), capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    for name in ("inf", "-inf", "nan"):
        assert as_number(result[name]) is not None and result[name] >= 1e30, (name, result)
    assert result["same inf"] == 0.0


@pytest.mark.slow
@needs_torch
@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--model-config", '{"num_attention_heads": 5}'], 1, "not a multiple"),
        (["--model-config", '{"hidden_act": "nope"}'], 1, "KeyError: 'nope'"),
        (["--attn", "nonsense"], 1, "nonsense"),
        (["--arch", "lama"], 1, "did you mean llama"),
        (["--device", "bogus"], 2, "--device bogus"),
    ],
)
def test_a_model_transformers_refuses_is_one_error_line(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    """What transformers (or torch) refuses is one `error:` line, the trial's reason,
    not a traceback whose last line is `KeyError: 'nope'` or a wrapped message."""
    tiny = ["--arch", "llama", "--layers", "1", "--hidden", "32", "--heads", "2", "--vocab", "64"]
    proc = run_bench([*tiny, "--seq", "8", "--batch-sizes", "1", *args], tmp_path)
    assert proc.returncode == code and proc.stdout == "", proc.stderr[-2000:]
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ") and says in line and len(line) < 400, line
