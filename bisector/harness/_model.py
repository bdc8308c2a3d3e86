"""What the harness runs: a factory of the repository under test, or a transformers
architecture built from a config with random weights.

A factory is ``MODULE:FUNCTION`` importable from the current folder (the checkout). It is
called with those of these keyword arguments its signature names (all of them when it
takes ``**kwargs``): ``device`` (torch.device), ``dtype`` (torch.dtype), ``seed``,
``attn_implementation``, ``seq``, ``vocab``, ``options`` (every option, as a dict). It
returns ``(model, input_builder)``; ``input_builder(batch_size, index)`` returns the
model's inputs for ``batch_size`` requests -- a dict of keyword arguments, a tensor, or a
tuple of positional arguments -- and must be deterministic in ``index`` (the harness
cycles through a few indexes; the reference set uses indexes from 10000). The builder
may pad the batch itself, the way the serving code does: the harness times whatever it
returns and still counts ``batch_size`` requests, and it compares the first
``batch_size`` rows of the output with the reference.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

InputBuilder = Callable[[int, int], Any]

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
_FIRST_TOKEN = 3  # random inputs never use the special ids
REFERENCE_INDEX_BASE = 10_000


class ModelError(Exception):
    """The model or its inputs could not be built (a failed trial)."""


@dataclass
class Workload:
    """A built model and the function that makes its inputs."""

    model: Any
    build_inputs: InputBuilder
    source: str
    generates: bool
    pad_token_id: int | None
    phases: dict[str, float] = field(default_factory=dict)  # build phases, seconds


def resolve_dtype(torch: Any, name: str) -> Any:
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_callable(spec: str) -> Callable[..., Any]:
    """Import ``MODULE:FUNCTION`` with the current folder first on sys.path."""
    module_name, _, attr = spec.partition(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"cannot load {spec}: {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise ModelError(f"{spec} is not callable")
    return obj  # type: ignore[no-any-return]


def _call_with_accepted(fn: Callable[..., Any], offered: dict[str, Any]) -> Any:
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**offered)
    return fn(**{k: v for k, v in offered.items() if k in params})


def from_factory(torch: Any, spec: str, options: dict[str, Any], device: Any) -> Workload:
    factory = load_callable(spec)
    offered = {
        "device": device,
        "dtype": resolve_dtype(torch, options["dtype"]),
        "seed": options["seed"],
        "attn_implementation": options["attn"],
        "seq": options["seq"],
        "vocab": options["vocab"],
        "options": dict(options),
    }
    torch.manual_seed(options["seed"])
    result = _call_with_accepted(factory, offered)
    if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
        raise ModelError(f"{spec} must return (model, input_builder)")
    model, builder = result
    if hasattr(model, "eval"):
        model.eval()
    return Workload(model, builder, f"factory {spec}", hasattr(model, "generate"), None)


def _config_kwargs(transformers: Any, options: dict[str, Any]) -> dict[str, Any]:
    arch = options["arch"]
    try:
        probe = transformers.AutoConfig.for_model(arch)
    except (ValueError, KeyError) as exc:
        # transformers' message lists every model type it has (thousands of characters).
        known = list(getattr(transformers, "CONFIG_MAPPING", {}).keys())
        close = difflib.get_close_matches(arch, known, n=3)
        also = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelError(f"--arch {arch}: not a transformers model type{also}") from exc
    hidden = options["hidden"]
    kwargs: dict[str, Any] = {
        "num_hidden_layers": options["layers"],
        "hidden_size": hidden,
        "num_attention_heads": options["heads"],
        "vocab_size": options["vocab"],
        "max_position_embeddings": max(128, options["seq"] + options["new_tokens"]),
        # Inside the small vocabulary: transformers warns about ids outside it.
        "pad_token_id": PAD_ID,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "use_cache": True,
    }
    for name in ("intermediate_size", "n_inner", "ffn_dim", "d_ff"):
        if hasattr(probe, name):
            kwargs[name] = options["intermediate"] or 4 * hidden
            break
    if options["kv_heads"] is not None:
        kwargs["num_key_value_heads"] = options["kv_heads"]
    if options["model_config"]:
        kwargs.update(json.loads(options["model_config"]))
    return kwargs


def from_transformers(torch: Any, options: dict[str, Any], device: Any) -> Workload:
    """A transformers architecture with random weights, built on the device.

    Where the time went (tiny llama on CPU, 3.3 s): ~3.2 s importing the architecture's
    modeling code (transformers loads it lazily, with torch.distributed, dynamo, ...) and
    ~50 ms building; on a big model on a GPU, the library's per-module init (one kernel
    or Python call per tensor, twice: torch's default then transformers') adds seconds.
    So: the import is its own phase (`import_model_s`, which `benchmark.preload` can
    cover by listing the modeling module), and the weights, random anyway, skip the
    library's init and get one seeded fill (`fill_random`): deterministic per seed, so a
    reference made with this harness still agrees.
    """
    import transformers

    dtype = resolve_dtype(torch, options["dtype"])
    t0 = time.perf_counter()
    kwargs = _config_kwargs(transformers, options)
    # Building a config runs only its validators (some raise their own exception types).
    with _refused(options, Exception):
        config = transformers.AutoConfig.for_model(options["arch"], **kwargs)
    model_class = _causal_lm_class(transformers, config)
    imported = time.perf_counter()
    attn = options["attn"]
    # Built on the device directly; dtype and attention are pinned so a library's new
    # default is no false regression.
    with torch.device(device), _skipped_init(torch, transformers), _refused(options):
        try:
            model = model_class._from_config(config, dtype=dtype, attn_implementation=attn)
        except TypeError:  # transformers < 4.56 names it torch_dtype
            model = model_class._from_config(config, torch_dtype=dtype, attn_implementation=attn)
    model = model.to(device=device, dtype=dtype).eval()
    built = time.perf_counter()
    fill_random(torch, model, options["seed"], getattr(config, "initializer_range", 0.02))
    filled = time.perf_counter()
    actual = getattr(model.config, "_attn_implementation", attn)
    if actual != attn:
        raise ModelError(f"asked for attn_implementation={attn!r}, the model uses {actual!r}")
    builder = random_token_builder(torch, options["vocab"], options["seq"], options["seed"])
    phases = {
        "import_model_s": round(imported - t0, 3),
        "construct_s": round(built - imported, 3),
        "fill_s": round(filled - built, 3),
    }
    return Workload(model, builder, f"transformers {options['arch']}", True, PAD_ID, phases)


_REFUSALS = (ValueError, KeyError, TypeError, ImportError)


@contextmanager
def _refused(options: dict[str, Any], *refusals: type[Exception]) -> Iterator[None]:
    """What transformers raises for a config or attention it refuses (a head count that
    does not divide the width, an unknown activation, an attention whose package is not
    installed): one line naming it, not a traceback whose last line is `KeyError: 'x'`."""
    caught = refusals or _REFUSALS
    try:
        yield
    except caught as exc:
        raise ModelError(
            f"transformers refused the {options['arch']} model (--arch, --layers ... "
            f"--model-config, --attn): {type(exc).__name__}: {one_line(str(exc))}"
        ) from exc


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line of at most about `limit` characters: the trial's reason is the
    last stderr line, so an error message that wraps would lose its start."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _causal_lm_class(transformers: Any, config: Any) -> Any:
    """The causal-LM class of `config` (importing its modeling module: the slow part)."""
    try:
        return transformers.AutoModelForCausalLM._model_mapping[type(config)]
    except KeyError as exc:
        raise ModelError(f"{type(config).__name__} has no causal-LM model") from exc


_INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)


@contextmanager
def _skipped_init(torch: Any, transformers: Any) -> Iterator[None]:
    """No weight init while building: torch's `nn.init` functions and transformers'
    per-module `_init_weights` do nothing (weight tying still happens); the tensors are
    allocated, not written, and `fill_random` writes them once."""
    saved: list[tuple[Any, str, Any]] = []

    def keep(tensor: Any, *_args: Any, **_kwargs: Any) -> Any:
        return tensor

    def skip(*_args: Any, **_kwargs: Any) -> None:
        return None

    pretrained = transformers.PreTrainedModel
    for owner, name, stub in (
        *((torch.nn.init, n, keep) for n in _INIT_FUNCTIONS),
        (pretrained, "initialize_weights", skip),
        (pretrained, "_initialize_weights", skip),
    ):
        if hasattr(owner, name):
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, stub)
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


_POOL = 1_000_003  # prime: rows of any width below it are distinct windows of the pool


def fill_random(torch: Any, model: Any, seed: int, std: float) -> None:
    """Seeded weights in one pass on the model's device: matrices N(0, std), biases 0,
    other vectors (norm scales) 1 -- the shape of transformers' own init, without its
    per-module Python.

    The matrices are filled from one seeded pool of ~1M normal values, read cyclically
    from where the previous matrix stopped: drawing every weight (1e8 normals on a CPU
    take seconds) costs several times writing them, and random weights only need to be
    unstructured enough for non-degenerate logits. The same seed on the same device
    gives the same weights.
    """
    pools: dict[Any, Any] = {}
    offset = 0
    with torch.no_grad():
        for name, param in model.named_parameters():  # shared (tied) tensors come once
            if param.dim() < 2:
                param.zero_() if name.endswith("bias") else param.fill_(1.0)
                continue
            pool = pools.get(param.device)
            if pool is None:
                gen = torch.Generator(param.device).manual_seed(seed)
                pool = torch.empty(_POOL, device=param.device).normal_(0.0, std, generator=gen)
                pools[param.device] = pool
            flat, done = param.view(-1), 0
            while done < flat.numel():
                n = min(_POOL - offset, flat.numel() - done)
                flat[done : done + n].copy_(pool[offset : offset + n])
                done, offset = done + n, (offset + n) % _POOL


def random_token_builder(torch: Any, vocab: int, seq: int, seed: int) -> InputBuilder:
    """Deterministic random token ids in (batch, seq), with an all-ones attention mask."""
    if vocab <= _FIRST_TOKEN:
        raise ModelError(f"--vocab must exceed {_FIRST_TOKEN}")

    def build(batch_size: int, index: int) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + index * 1_009 + batch_size)
        ids = torch.randint(_FIRST_TOKEN, vocab, (batch_size, seq), generator=gen)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "use_cache": False}

    return build


def pad_batch(
    torch: Any, inputs: Any, batch_size: int, target: int, pad_token_id: int | None
) -> Any:
    """Pad every tensor whose first dimension is the batch to `target` rows, the way an
    over-padding dynamic batcher does: padding rows are masked out (attention_mask 0) and
    carry pad tokens (or a copy of the first row when the pad id is unknown)."""
    if target <= batch_size:
        return inputs

    def pad(name: str | None, t: Any) -> Any:
        if not (isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] == batch_size):
            return t
        extra = target - batch_size
        if name == "attention_mask":
            rows = torch.zeros((extra, *t.shape[1:]), dtype=t.dtype, device=t.device)
        elif name == "input_ids" and pad_token_id is not None:
            rows = torch.full((extra, *t.shape[1:]), pad_token_id, dtype=t.dtype, device=t.device)
        else:
            rows = t[:1].expand(extra, *t.shape[1:])
        return torch.cat([t, rows], dim=0)

    if isinstance(inputs, dict):
        return {k: pad(k, v) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(pad(None, v) for v in inputs)
    return pad(None, inputs)


def to_device(torch: Any, inputs: Any, device: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: to_device(torch, v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(torch, v, device) for v in inputs)
    return inputs


def call_model(model: Any, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def logits_of(torch: Any, output: Any) -> Any:
    """The logits tensor of a model output (``.logits``, a tensor, or its first element)."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, dict):
        first = output.get("logits", next(iter(output.values()), None))
        return logits_of(torch, first)
    if isinstance(output, (tuple, list)) and output:
        return logits_of(torch, output[0])
    raise ModelError(f"cannot find logits in a {type(output).__name__} output")
