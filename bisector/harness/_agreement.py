"""Output agreement with reference logits saved at the good endpoint.

The fixed input set is ``input_builder(reference_batch, 10000 + i)`` for
``i < reference_inputs``; only the first ``reference_batch`` rows of each output are
kept (rows a padding batcher adds are not requests). ``--reference-out`` saves them with
``torch.save`` (written atomically); ``--reference-in`` compares: per-token cosine of
the logits (mean), the largest absolute difference, and the fraction of tokens whose
argmax agrees.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = "bisector-bench-reference/1"
#: agreement_max_abs where an output is NaN or infinite and the reference's is not: the
#: largest number the benchmark protocol takes as a measurement. A float's maximum (what
#: nan_to_num makes of inf) is not one, so bisector dropped the metric and the commit
#: that broke the outputs read as one that cannot be tested.
UNBOUNDED_DIFFERENCE = 1e300


class ReferenceError(Exception):
    """The reference file is unreadable or does not match these outputs."""


def save_reference(torch: Any, path: str, logits: list[Any], meta: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            # Plain tensors, strings and lists only: loadable with weights_only by any torch.
            torch.save(
                {"format": FORMAT, "meta": json.dumps(meta, default=str), "logits": logits}, fh
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_reference(torch: Any, path: str) -> list[Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ReferenceError(
            f"cannot read reference {path} (not one --reference-out wrote?): "
            f"{type(exc).__name__}: {_gist(str(exc))}"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReferenceError(f"{path} is not a bisector bench reference ({FORMAT})")
    return list(data["logits"])


def _gist(message: str) -> str:
    """One line of torch.load's message: it runs to paragraphs, the error comes last, and
    its first line advises `weights_only=False` (code execution from a file we did not
    write), which a run's one-line trial reason must not repeat."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    marker = next((i for i, line in enumerate(lines) if "WeightsUnpickler error" in line), None)
    if marker is not None and marker + 1 < len(lines):
        return lines[marker + 1][:200]
    return (lines[0] if lines else "")[:200]


def compare(torch: Any, reference: list[Any], logits: list[Any]) -> dict[str, float]:
    """Agreement metrics of `logits` against `reference` (lists of CPU tensors)."""
    if len(reference) != len(logits):
        raise ReferenceError(f"reference has {len(reference)} inputs, this run {len(logits)}")
    cos_sum, tokens, agree, max_abs = 0.0, 0, 0, 0.0
    for ref, out in zip(reference, logits, strict=True):
        if tuple(ref.shape) != tuple(out.shape):
            raise ReferenceError(
                f"logits shape {tuple(out.shape)} differs from the reference's {tuple(ref.shape)}"
            )
        # NaN or inf logits must count as disagreement, not poison the averages.
        r = torch.nan_to_num(ref.double().reshape(-1, ref.shape[-1]), nan=0.0)
        o = torch.nan_to_num(out.double().reshape(-1, out.shape[-1]), nan=0.0)
        cos = torch.nn.functional.cosine_similarity(r, o, dim=-1, eps=1e-12)
        cos_sum += float(cos.sum())
        tokens += r.shape[0]
        agree += int((r.argmax(dim=-1) == o.argmax(dim=-1)).sum())
        max_abs = max(max_abs, _max_abs_difference(torch, ref, out))
    return {
        "agreement_cosine": cos_sum / tokens,
        "agreement_max_abs": max_abs,
        "top1_agreement": agree / tokens,
    }


def _max_abs_difference(torch: Any, ref: Any, out: Any) -> float:
    """The largest |ref - out|; `UNBOUNDED_DIFFERENCE` where they differ by NaN or inf
    (equal infinities do not differ)."""
    r, o = ref.double(), out.double()
    diff = torch.where(r == o, torch.zeros_like(r), (r - o).abs())
    diff = torch.nan_to_num(diff, nan=UNBOUNDED_DIFFERENCE, posinf=UNBOUNDED_DIFFERENCE)
    return min(float(diff.max()), UNBOUNDED_DIFFERENCE) if diff.numel() else 0.0
