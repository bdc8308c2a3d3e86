"""Simulated: fewer executions per bisection, at what error rate? (issue 12, item B)

Runs the lean hunt of bench/simulate.py (threshold 5%, repeats {min: 3, max: 15}, 64
commits, one +10% step) under every noise model with candidate changes to the rules,
side by side on the same seeds, and reports per model: wrong exit 0 (with its 95% upper
bound), right, inconclusive, executions (trials) and their phases, and the two-step
range's executions over a one-step range's with the same noise (`two-steps` /
`process-offsets`). A variant is a set of module constants of `bisector.core` patched
for the run (bench-only; the default is what the code has).

    python bench/simulate_cost.py --runs 2000 --variants default,early3
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from sim_noise import HIDDEN_STEP, MODELS, NULL_MODELS, UNEVEN_STEPS
from simulate import Outcome, _pct, _upper95, run_all

from bisector.core.sequential import LEAN, SprtRule
from bisector.core.types import Status

#: The lean rule before issue 12's last change: one process decided only in the named
#: endpoint's fifth.
FIFTH = replace(LEAN, single_fraction=0.2)


def _rules(
    early: int = 3,
    top_up: int = 0,
    lean: SprtRule = FIFTH,
    settle_first: bool = True,
    posterior: bool = False,
    epsilon: float = 0.1,
    cap: float = 4.0,
    interleave: int = 8,
) -> dict[str, Any]:
    """Every knob a variant sets, so a variant means the same whatever the defaults are."""
    return {
        "bisector.core.hunt.POSTERIOR_SEARCH": posterior,
        "bisector.core.posterior.EPSILON": epsilon,
        "bisector.core.posterior.PROCESS_CAP": cap,
        "bisector.core.partsearch.INTERLEAVE_EVERY": interleave,
        "bisector.core.verify.EARLY_PROCESSES": early,
        "bisector.core.sampling.ENDS_TOP_UP_AFTER": top_up,
        "bisector.core.sequential.LEAN": lean,
        "bisector.core.hunt.SETTLE_BEFORE_VERIFY": settle_first,
    }


THIRD = replace(FIFTH, single_fraction=1 / 3)

#: name -> {"module.CONSTANT": value}; "default" is whatever the code has now. The rejected
#: variants whose knobs are gone from the code (`verify-at-3`, `separated`, `separated-4`,
#: `likely-3`; bench/RESULTS.md has what they measured) run at commit d9d51dd.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "early4": _rules(early=4),
    # issue 12 before its last change: verification from 3 a side, one process decides
    # in the named endpoint's fifth, the ends never topped up
    "early3": _rules(),
    # an unclear candidate gets the range's ends measured as often as itself
    "early3+ends-top-up-3": _rules(top_up=3),
    "early3+ends-top-up-4": _rules(top_up=4),
    "early4+ends-top-up-3": _rules(early=4, top_up=3),
    # the lean rule's one-process verdicts, looser: a single process decides in the named
    # endpoint's third (not fifth), or Wald's boundaries at 0.1 (not 0.05)
    "early3+single-third": _rules(lean=THIRD),
    "early3+wald-0.1": _rules(lean=replace(FIFTH, alpha=0.1, beta=0.1)),
    # both of the two that cut the most: the default since issue 12's last change
    "trimmed": _rules(top_up=3, lean=THIRD),
    "trimmed+wald-0.1": _rules(top_up=3, lean=replace(THIRD, alpha=0.1, beta=0.1)),
    "early4+verify-first": _rules(early=4, settle_first=False),
    # probabilistic bisection (core.posterior) instead of deciding candidate by candidate
    "posterior": _rules(top_up=3, lean=THIRD, posterior=True),
    "posterior+eps-0.2": _rules(top_up=3, lean=THIRD, posterior=True, epsilon=0.2),
    "early3+verify-first": _rules(settle_first=False),
    # no check beside a verified culprit for a second step the search placed with an end
    # (`core.residual`)
    "no-residual": {"bisector.core.residual.CHECK_BESIDE": False},
    "suspect-full": {"bisector.core.residual.SUSPECT_FRACTION": 1.0},
    # a process beyond the good end read as it is (the contaminated normal alone), or one
    # beyond either end moved to that end
    "beyond-none": {"bisector.core.sequential.BEYOND_ENDS": ()},
    "beyond-both": {"bisector.core.sequential.BEYOND_ENDS": ("good", "bad")},
    # a commit whose every process lies beyond the bad end read for nothing, as before
    # (`partsearch.BEYOND_SPLIT`)
    "no-beyond-split": {"bisector.core.partsearch.BEYOND_SPLIT": False},
    "beyond-unconfirmed": {"bisector.core.partsearch.BEYOND_CONFIRM": 0},
}


def knobs(variant: str) -> list[tuple[Any, str, Any]]:
    """The variant's settings as (module, attribute, value)."""
    out = []
    for path, value in VARIANTS[variant].items():
        module_name, attr = path.rsplit(".", 1)
        module = importlib.import_module(module_name)
        if not hasattr(module, attr):  # a knob removed from the code would patch nothing
            raise SystemExit(f"error: variant {variant!r}: {path} is not in the code")
        out.append((module, attr, value))
    return out


@contextmanager
def patched(settings: Sequence[tuple[Any, str, Any]]) -> Iterator[None]:
    """Each module attribute set for the block, the old values back after it."""
    saved = [(module, attr, getattr(module, attr)) for module, attr, _ in settings]
    try:
        for module, attr, value in settings:
            setattr(module, attr, value)
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)


def run_variant(variant: str, models: Sequence[str], runs: int) -> dict[str, list[Outcome]]:
    with patched(knobs(variant)):
        got = run_all(models, ["lean"], runs, 64, jobs=1)
    return {m: got[(m, "lean")] for m in models}


def rows(variant: str, got: dict[str, list[Outcome]]) -> list[str]:
    out = []
    for m, outs in got.items():
        n = len(outs)
        wrong = sum(o.wrong_exit0 for o in outs)
        mean = sum(o.trials for o in outs) / n
        phase = {
            k: sum(dict(o.by_phase).get(k, 0) for o in outs) / n
            for k in ("endpoints", "interleave", "candidates", "verify")
        }
        out.append(
            f"| {variant} | {m} | {n} | {_pct(sum(o.right for o in outs), n)} | "
            f"{wrong} ({_pct(wrong, n)}, <= {100 * _upper95(wrong, n):.2f}%) | "
            f"{sum(o.missed_exit0 for o in outs)} | "
            f"{_pct(sum(o.status is Status.INCONCLUSIVE for o in outs), n)} | "
            f"{_pct(sum(o.status is Status.NOT_REPRODUCED for o in outs), n)} | {mean:.1f} | "
            f"{phase['endpoints'] + phase['interleave']:.1f} | {phase['candidates']:.1f} | "
            f"{phase['verify']:.1f} |"
        )
    two, one = got.get("two-steps"), got.get("process-offsets")
    if two and one:
        ratio = (sum(o.trials for o in two) / len(two)) / (sum(o.trials for o in one) / len(one))
        out.append(f"| {variant} | two-steps / process-offsets | | | | | | | {ratio:.2f}x | | | |")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--variants", default="default")
    p.add_argument("--models", default=",".join(m.name for m in MODELS))
    p.add_argument(
        "--all-models",
        action="store_true",
        help="every model, `hog-hides-step` and the null models (bench/simulate_nullcheck.py)",
    )
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if args.all_models:
        models = [m.name for m in (*MODELS, HIDDEN_STEP, UNEVEN_STEPS, *NULL_MODELS)]
    print(
        "| variant | model | runs | right | wrong exit 0 (95% bound) | a step missed, exit 0 | "
        "inconclusive | not reproduced | trials | "
        "endpoints+interleave | candidates | verify |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for variant in args.variants.split(","):
        t0 = time.monotonic()
        for row in rows(variant, run_variant(variant, models, args.runs)):
            print(row, flush=True)
        print(f"<!-- {variant}: {time.monotonic() - t0:.0f} s -->", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
