"""Options of the harness: argparse, optionally seeded from a JSON config file.

Standard library only. A config file (``--config FILE``) is a JSON object whose keys are
the long option names (``batch-sizes`` or ``batch_sizes``); options given on the command
line win over it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

REFERENCE_OUT_ENV = "BISECTOR_REFERENCE_OUT"  # the names bisector.engine.reference sets
REFERENCE_IN_ENV = "BISECTOR_REFERENCE_IN"


class OptionsError(Exception):
    """The options are invalid: exit 2 with one line on stderr."""


@dataclass(frozen=True)
class BenchOptions:
    """Everything one harness process needs to know, validated."""

    arch: str = "gpt2"
    factory: str | None = None
    layers: int = 2
    hidden: int = 64
    heads: int = 2
    kv_heads: int | None = None
    intermediate: int | None = None
    vocab: int = 256
    model_config: str | None = None
    seq: int = 32
    batch_sizes: tuple[int, ...] = (1, 8)
    pad_to: int | None = None
    dtype: str = "float32"
    attn: str = "eager"
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    trials_per_process: int = 30
    rotate: int = 4
    warmup_min: int = 5
    warmup_max: int = 200
    warmup_window: int = 5
    warmup_tolerance: float = 0.02
    warmup_max_s: float = 60.0
    cuda_graphs: bool = False
    new_tokens: int = 0
    gen_trials: int = 5
    reference_out: str | None = None
    reference_in: str | None = None
    reference_inputs: int = 2
    reference_batch: int = 2
    tokenizer: str | None = None
    tokenizer_texts: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The options as a JSON-ready dict (for the ``_run`` metadata)."""
        data = asdict(self)
        data["batch_sizes"] = list(self.batch_sizes)
        return data


_DTYPES = ("float32", "float16", "bfloat16")

# Said by --help, so a factory can be written without reading the harness's source.
FACTORY_CONTRACT = """\
the factory (--factory MODULE:FUNCTION):
  MODULE is imported from the current folder (the checkout under test). FUNCTION is
  called with those of these keyword arguments its signature names (all of them when
  it takes **kwargs):
    device               torch.device the model must live on (--device)
    dtype                torch.dtype (--dtype)
    seed                 int (--seed); torch.manual_seed(seed) is already called
    attn_implementation  str (--attn)
    seq                  int, tokens per input row (--seq)
    vocab                int (--vocab)
    options              dict of every option of this command
  It returns (model, input_builder). input_builder(batch_size, index) returns the
  model's inputs for batch_size requests: a dict of keyword arguments (model(**inputs)),
  a tensor (model(inputs)) or a tuple (model(*inputs)); the harness moves tensors to
  the device. It must give the same inputs for the same index (the harness cycles
  through --rotate indexes; the reference set uses indexes from 10000). It may pad the
  batch itself, as a serving batcher does: the call is timed whatever it returns,
  batch_size requests are counted, and the first batch_size rows of the output (its
  logits, or the output itself) are compared with the reference.
  Example: docs/harness.md; `bisector init --bench harness` writes one.

reference outputs:
  --reference-out FILE saves the logits of a fixed input set; --reference-in FILE
  compares with them (agreement_cosine, agreement_max_abs, top1_agreement). Without
  either option, the environment variables BISECTOR_REFERENCE_OUT / BISECTOR_REFERENCE_IN
  are used: bisector sets them with benchmark.reference: auto.

exit codes: 0 measured; 2 invalid options; 125 torch/transformers cannot be imported
here (the step cannot be tested); 1 any other failure.
"""


def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one `error:` line (a trial's reason is the last stderr
    line; argparse printed its 20-line usage before it), as a bad `--config` value is."""

    def error(self, message: str) -> NoReturn:
        raise OptionsError(f"{message} (see python -m bisector.bench --help)")


def build_parser() -> argparse.ArgumentParser:
    """The harness's argument parser; defaults come from `BenchOptions`."""
    d = BenchOptions()
    p = _Parser(
        prog="python -m bisector.bench",
        description="Benchmark a PyTorch / transformers model; the last stdout line is the "
        "benchmark protocol's JSON object (keys starting with '_' are metadata).",
        epilog=FACTORY_CONTRACT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config", metavar="FILE", help="JSON object of option defaults (keys: long option names)"
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--factory",
        metavar="MODULE:FUNCTION",
        default=d.factory,
        help="a function of the repository under test (cwd is on sys.path) returning "
        "(model, input_builder); input_builder(batch_size, index) gives the inputs",
    )
    m.add_argument(
        "--arch",
        default=d.arch,
        help="transformers model_type built from config with random weights",
    )
    m.add_argument("--layers", type=int, default=d.layers)
    m.add_argument("--hidden", type=int, default=d.hidden)
    m.add_argument("--heads", type=int, default=d.heads)
    m.add_argument(
        "--kv-heads",
        type=int,
        default=d.kv_heads,
        help="key/value heads (GQA), where the arch has them",
    )
    m.add_argument(
        "--intermediate", type=int, default=d.intermediate, help="MLP width (default 4 x hidden)"
    )
    m.add_argument("--vocab", type=int, default=d.vocab)
    m.add_argument(
        "--model-config",
        metavar="JSON",
        default=d.model_config,
        help="extra config keys for AutoConfig.for_model, as a JSON object",
    )
    m.add_argument("--dtype", choices=_DTYPES, default=d.dtype)
    m.add_argument("--attn", default=d.attn, help="attn_implementation, pinned (eager, sdpa, ...)")
    m.add_argument("--seed", type=int, default=d.seed)
    w = p.add_argument_group("workload")
    w.add_argument("--seq", type=int, default=d.seq, help="tokens per input row")
    w.add_argument("--batch-sizes", type=_positive_ints, default=d.batch_sizes, help="e.g. 1,8")
    w.add_argument(
        "--pad-to",
        type=int,
        default=d.pad_to,
        help="pad every batch to N rows (simulates dynamic-batching over-padding)",
    )
    w.add_argument(
        "--rotate", type=int, default=d.rotate, help="distinct inputs cycled through per batch size"
    )
    w.add_argument(
        "--new-tokens",
        type=int,
        default=d.new_tokens,
        help="also time greedy generation of N tokens",
    )
    w.add_argument("--gen-trials", type=int, default=d.gen_trials)
    t = p.add_argument_group("timing")
    t.add_argument(
        "--device", default=d.device, help="auto (cuda when available), cpu, cuda, cuda:N"
    )
    t.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    t.add_argument(
        "--trials-per-process",
        type=int,
        default=d.trials_per_process,
        help="timed calls per batch size",
    )
    t.add_argument("--warmup-min", type=int, default=d.warmup_min)
    t.add_argument("--warmup-max", type=int, default=d.warmup_max)
    t.add_argument(
        "--warmup-window",
        type=int,
        default=d.warmup_window,
        help="settled when the median of the last K calls moved less than the tolerance",
    )
    t.add_argument("--warmup-tolerance", type=float, default=d.warmup_tolerance)
    t.add_argument("--warmup-max-s", type=float, default=d.warmup_max_s)
    t.add_argument(
        "--cuda-graphs",
        action="store_true",
        default=d.cuda_graphs,
        help="replay a captured CUDA graph",
    )
    q = p.add_argument_group("quality")
    ref = q.add_mutually_exclusive_group()
    ref.add_argument(
        "--reference-out",
        metavar="FILE",
        default=d.reference_out,
        help="save logits on the fixed input set (torch.save)",
    )
    ref.add_argument(
        "--reference-in",
        metavar="FILE",
        default=d.reference_in,
        help="compare logits on the fixed input set with a saved reference",
    )
    q.add_argument("--reference-inputs", type=int, default=d.reference_inputs)
    q.add_argument("--reference-batch", type=int, default=d.reference_batch)
    q.add_argument(
        "--tokenizer",
        default=d.tokenizer,
        help="tokenizer.json file, local tokenizer folder, or MODULE:FUNCTION returning one",
    )
    q.add_argument(
        "--tokenizer-texts",
        metavar="FILE",
        default=d.tokenizer_texts,
        help="texts, one per line (default: a built-in fixed set)",
    )
    return p


def _config_defaults(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OptionsError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise OptionsError(f"config {path} must hold a JSON object")
    known = {a.dest: a for a in parser._actions}
    defaults: dict[str, Any] = {}
    for key, value in raw.items():
        dest = str(key).replace("-", "_")
        action = known.get(dest)
        if action is None or dest in ("help", "config"):
            raise OptionsError(f"config {path}: unknown key {key!r}")
        if dest == "batch_sizes":
            text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
            try:
                value = _positive_ints(text)
            except argparse.ArgumentTypeError as exc:
                raise OptionsError(f"config {path}: {key}: {exc}") from exc
        elif dest == "model_config" and isinstance(value, dict):
            value = json.dumps(value)
        else:
            _check_config_value(path, key, action, value)
        defaults[dest] = value
    return defaults


def _check_config_value(path: str, key: str, action: argparse.Action, value: Any) -> None:
    """A `--config` value of the option's kind: argparse converts command-line text, but a
    JSON value is taken as it is (`"cuda_graphs": "false"` was a true string)."""
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise OptionsError(f"config {path}: {key}: expected true or false, not {value!r}")
        return
    if value is None:
        return
    if action.type is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise OptionsError(f"config {path}: {key}: expected a whole number, not {value!r}")
    if action.type is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise OptionsError(f"config {path}: {key}: expected a number, not {value!r}")
    if action.type is None and not isinstance(value, str):
        raise OptionsError(f"config {path}: {key}: expected text, not {value!r}")
    if action.choices is not None and value not in action.choices:
        shown = ", ".join(map(str, action.choices))
        raise OptionsError(f"config {path}: {key}: expected one of {shown}, not {value!r}")


def parse_options(argv: Sequence[str] | None = None) -> BenchOptions:
    """Parse argv (and the config file it names) into validated options.

    :raises OptionsError: on an unreadable config, an unknown key or an invalid value.
    """
    parser = build_parser()
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        parser.set_defaults(**_config_defaults(pre.config, parser))
    ns = vars(parser.parse_args(argv))
    ns.pop("config", None)
    if ns["reference_out"] is None and ns["reference_in"] is None:
        # benchmark.reference: auto (bisector/engine/reference.py); the command line wins
        ns["reference_out"] = os.environ.get(REFERENCE_OUT_ENV) or None
        ns["reference_in"] = (
            None if ns["reference_out"] else os.environ.get(REFERENCE_IN_ENV) or None
        )
    ns["batch_sizes"] = tuple(ns["batch_sizes"])
    opts = BenchOptions(**ns)
    _validate(opts)
    return opts


def _validate(o: BenchOptions) -> None:
    if o.dtype not in _DTYPES:
        raise OptionsError(f"--dtype must be one of {', '.join(_DTYPES)}")
    for name in (
        "layers",
        "hidden",
        "heads",
        "vocab",
        "seq",
        "trials_per_process",
        "rotate",
        "warmup_window",
        "reference_inputs",
        "reference_batch",
        "gen_trials",
    ):
        if getattr(o, name) < 1:
            raise OptionsError(f"--{name.replace('_', '-')} must be at least 1")
    if o.warmup_min < 0 or o.warmup_max < o.warmup_min:
        raise OptionsError("need 0 <= --warmup-min <= --warmup-max")
    if o.threads is not None and o.threads < 1:
        raise OptionsError("--threads must be at least 1")
    if o.pad_to is not None and o.pad_to < 1:
        raise OptionsError("--pad-to must be at least 1")
    if o.new_tokens < 0:
        raise OptionsError("--new-tokens must not be negative")
    if o.factory is not None and ":" not in o.factory:
        raise OptionsError("--factory must be MODULE:FUNCTION")
    if o.model_config is not None:
        try:
            extra = json.loads(o.model_config)
        except ValueError as exc:
            raise OptionsError(f"--model-config is not JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise OptionsError("--model-config must be a JSON object")
