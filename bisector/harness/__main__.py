"""``python -m bisector.bench``: measure a model and print the protocol's JSON line.

Exit codes: 0 a measurement; 2 invalid options; 125 torch (or transformers) cannot be
imported in this environment (the step cannot be tested); 1 any other failure.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

_HARNESS_START = time.time()

# Never reach the hub, whatever the step's environment says.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_DROP = object()


def _finite(value: Any, key: str) -> Any:
    """JSON has no NaN: drop non-finite numbers (and say so) rather than emit invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        print(f"[bench] {key}: non-finite value {value} left out", file=sys.stderr)
        return _DROP
    if isinstance(value, list):
        return [v for v in (_finite(x, key) for x in value) if v is not _DROP]
    if isinstance(value, dict):
        kept = ((k, _finite(x, f"{key}.{k}")) for k, x in value.items())
        return {k: v for k, v in kept if v is not _DROP}
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from bisector.harness._options import OptionsError, parse_options

    try:
        opts = parse_options(argv)
    except OptionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import_s: dict[str, float] = {}
    for module in ("torch",) if opts.factory else ("torch", "transformers"):
        t0 = time.perf_counter()
        try:
            importlib.import_module(module)
        except ImportError as exc:
            print(f"error: {module} cannot be imported here: {exc}", file=sys.stderr)
            return 125
        import_s[f"import_{module}_s"] = round(time.perf_counter() - t0, 3)
    from bisector.harness._agreement import ReferenceError
    from bisector.harness._model import ModelError, one_line
    from bisector.harness._run import run

    try:
        result = run(opts, _HARNESS_START, import_s)
    except OptionsError as exc:  # what only torch can tell apart: a device name
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except (ModelError, ReferenceError) as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(f"error: {type(exc).__name__}: {one_line(str(exc))}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    print(json.dumps(_finite(result, "result"), separators=(",", ":"), allow_nan=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
