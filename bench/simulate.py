"""Simulated bisections: error rates and trial counts of bisector's judge under noise.

Each simulated bisection is the pipeline's own hunt (`bisector.core.hunt.hunt`) over a
simulated `Probe` (bench/sim_noise.py): reproduce the endpoints, bisect every step of
the range (re-measuring its ends every few probes, splitting it at a candidate that sits
between them), and verify each culprit against its parent with fresh, interleaved trials,
adaptively. A culprit is `found` (exit 0) only when verified; the "today" column counts
what the pipeline named with exit 0 before verification decided the status.

The candidate rules run side by side on the same seeds (common random numbers): the
non-parametric rule (`pinpoint`, `judge.assess`), the SPRT with that rule as its guard
(`sequential`) and the hunt's default, the SPRT that lets one clear process decide with
the culprit's verification as the guard (`lean`; `core.sequential`). The naive strategy is `git bisect run` with one process per commit:
one process at each endpoint, then a commit is bad when its single value is past the
midpoint of the endpoints' values.

    python bench/simulate.py                 # 3,000 bisections per model, every rule
    python bench/simulate.py --write         # ... and the section of bench/RESULTS.md
    python bench/simulate.py --quick         # a smoke run
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from sim_noise import METRIC, MODEL_BY_NAME, MODELS, NoiseModel, SimProbe, sim_commit

from bisector.core.hunt import hunt
from bisector.core.sampling import CandidateRule, EndpointUnmeasurable
from bisector.core.types import Direction, MetricRule, Status, Threshold, TrialBudget
from bisector.ports import ProgressEvent, TrialStarted

RULE = MetricRule(Direction.LOWER, Threshold(0.05, relative=True))
BUDGET = TrialBudget(3, 15)  # the config's default `repeats`
RULES = ("pinpoint", "sequential", "lean")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "## Simulated bisections: error rates and trials (issue 12)"


@dataclass(frozen=True)
class Outcome:
    """One simulated bisection: its status, whether the named culprit is a true step."""

    status: Status
    culprit: int | None
    is_step: bool  # every commit named (culprits, suspect) is a true regression step
    control: bool  # the range has no regression at all
    wrong_exit0_today: bool  # a wrong culprit the pipeline would have named with exit 0
    trials: int
    by_phase: tuple[tuple[str, int], ...]
    complete: bool = True  # every true regression step is among the named culprits and suspect

    @property
    def missed_exit0(self) -> bool:
        """Exit 0 with a true step not named (a range with several steps)."""
        return self.status is Status.FOUND and not self.complete

    @property
    def wrong_exit0(self) -> bool:
        return self.status is Status.FOUND and not self.is_step

    @property
    def right(self) -> bool:
        """Found a true step, or (the control) claimed none."""
        if self.control:
            return self.status is not Status.FOUND
        return self.status is Status.FOUND and self.is_step


_COLUMN = {"reproduce": "endpoints", "interleave": "interleave", "verify": "verify"}


def simulate_once(
    model: NoiseModel,
    rng: random.Random,
    *,
    rule: CandidateRule = "pinpoint",
    n_commits: int = 64,
    tags: Sequence[int] = (),
) -> Outcome:
    """One bisection of a simulated range, exactly as the pipeline runs it: `core.hunt.hunt`.

    Reproduce, bisect every step (splitting the range at candidates between its ends),
    verify each culprit adaptively; FOUND only when verified. Trials are counted per phase
    from the hunt's own `TrialStarted` events.
    """
    positions = model.positions(n_commits, rng)
    probe = SimProbe(model, model.levels(n_commits, positions), rng)
    commits = [sim_commit(i) for i in range(n_commits)]

    def progress(event: ProgressEvent) -> None:
        if isinstance(event, TrialStarted):  # the hunt's phases, in the table's columns
            probe.phase = _COLUMN.get(event.phase, "candidates")

    try:
        result = hunt(commits, tags, probe, METRIC, RULE, BUDGET, progress, candidate_rule=rule)
    except EndpointUnmeasurable:
        return Outcome(
            Status.INCONCLUSIVE,
            None,
            False,
            not positions,
            False,
            probe.taken,
            tuple(sorted(probe.by_phase.items())),
        )
    named = [f.index for f in result.culprits]
    if result.suspect is not None:
        named.append(result.suspect.index)
    top = result.culprit or result.suspect
    worse = regressions(model, positions)
    all_steps = bool(named) and all(i in worse for i in named)
    # The pipeline before "found means verified" exited 0 on whatever the search named.
    wrong_today = bool(named) and not all_steps
    return Outcome(
        result.status,
        top.index if top else None,
        all_steps,
        not positions,
        wrong_today,
        probe.taken,
        tuple(sorted(probe.by_phase.items())),
        complete=set(worse) <= set(named),
    )


def regressions(model: NoiseModel, positions: Sequence[int]) -> list[int]:
    """The steps that make the metric worse (an improvement inside the range is a step,
    but no culprit should name it)."""
    return [at for at, step in zip(positions, model.steps, strict=True) if step > 0]


def naive_once(model: NoiseModel, rng: random.Random, *, n_commits: int = 64) -> Outcome:
    """`git bisect run` with one process per commit, bad past the endpoints' midpoint."""
    positions = model.positions(n_commits, rng)
    probe = SimProbe(model, model.levels(n_commits, positions), rng)
    midpoint = (probe.single(0) + probe.single(n_commits - 1)) / 2
    lo, hi = 0, n_commits - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe.single(mid) > midpoint:
            hi = mid
        else:
            lo = mid
    is_step = hi in positions
    return Outcome(Status.FOUND, hi, is_step, not positions, not is_step, probe.taken, ())


@dataclass(frozen=True)
class Task:
    model: str
    strategy: str  # one of RULES, or "naive"
    start: int
    count: int
    n_commits: int


def run_task(task: Task) -> list[Outcome]:
    model = MODEL_BY_NAME[task.model]
    out = []
    for i in range(task.start, task.start + task.count):
        rng = random.Random(f"{task.model}:{task.n_commits}:{i}")  # same seeds for every strategy
        if task.strategy == "naive":
            out.append(naive_once(model, rng, n_commits=task.n_commits))
        else:
            rule = cast("CandidateRule", task.strategy)
            out.append(simulate_once(model, rng, rule=rule, n_commits=task.n_commits))
    return out


def run_all(
    models: Sequence[str], strategies: Sequence[str], runs: int, n_commits: int, jobs: int
) -> dict[tuple[str, str], list[Outcome]]:
    chunk = max(1, min(100, runs // max(1, jobs * 4)))
    tasks = [
        Task(m, s, start, min(chunk, runs - start), n_commits)
        for m in models
        for s in strategies
        for start in range(0, runs, chunk)
    ]
    results: dict[tuple[str, str], list[Outcome]] = {(m, s): [] for m in models for s in strategies}
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            done = pool.map(run_task, tasks, chunksize=1)
    else:
        done = [run_task(t) for t in tasks]
    for task, outcomes in zip(tasks, done, strict=True):
        results[(task.model, task.strategy)].extend(outcomes)
    return results


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.2f}%" if n else "-"


def _upper95(k: int, n: int) -> float:
    """One-sided 95% upper bound of a rate seen k times in n (exact for k = 0: 3/n)."""
    if n == 0:
        return 1.0
    if k == 0:
        return float(1 - 0.05 ** (1 / n))
    p = k / n
    return min(1.0, p + 1.645 * math.sqrt(p * (1 - p) / n) + 1 / n)


def _p90(values: Sequence[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def summarize(
    results: dict[tuple[str, str], list[Outcome]], models: Sequence[str], strategies: Sequence[str]
) -> list[str]:
    """The table rows, one per model and rule (markdown)."""
    rows = [
        "| model | rule | runs | right | wrong exit 0 (95% bound) | wrong exit 0 today | "
        "inconclusive | not reproduced | trials mean | p90 | endpoints+interleave | "
        "candidates | verify | naive trials | naive wrong | ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: | ---: | ---: |",
    ]
    for m in models:
        naive = results.get((m, "naive"), [])
        naive_mean = sum(o.trials for o in naive) / len(naive) if naive else float("nan")
        naive_wrong = _pct(sum(o.wrong_exit0 for o in naive), len(naive))
        for s in strategies:
            if s == "naive":
                continue
            got = results[(m, s)]
            n = len(got)
            trials = [o.trials for o in got]
            mean = sum(trials) / n
            phase = {
                k: sum(dict(o.by_phase).get(k, 0) for o in got) / n
                for k in ("endpoints", "interleave", "candidates", "verify")
            }
            wrong = sum(o.wrong_exit0 for o in got)
            rows.append(
                f"| {m} | {s} | {n} | {_pct(sum(o.right for o in got), n)} | "
                f"{_pct(wrong, n)} (<= {100 * _upper95(wrong, n):.2f}%) | "
                f"{_pct(sum(o.wrong_exit0_today for o in got), n)} | "
                f"{_pct(sum(o.status is Status.INCONCLUSIVE for o in got), n)} | "
                f"{_pct(sum(o.status is Status.NOT_REPRODUCED for o in got), n)} | "
                f"{mean:.1f} | {_p90(trials)} | {phase['endpoints'] + phase['interleave']:.1f} | "
                f"{phase['candidates']:.1f} | {phase['verify']:.1f} | {naive_mean:.1f} | "
                f"{naive_wrong} | {mean / naive_mean:.2f} |"
            )
    return rows


def render(rows: Sequence[str], args: argparse.Namespace, wall_s: float) -> str:
    models = "\n".join(f"- `{m.name}`: {m.description}" for m in MODELS if m.name in args.models)
    return "\n".join(
        [
            TITLE,
            "",
            f"`python bench/simulate.py --runs {args.runs} --commits {args.commits}` "
            f"({wall_s:.0f} s on {args.jobs} cores). Each bisection: {args.commits} commits, one "
            f"+10% step at a random commit (two for `two-steps`, none for the control), threshold "
            f"{RULE.threshold}, repeats {{min: {BUDGET.min}, max: {BUDGET.max}}}; reproduce, bisect "
            "every step (`core.hunt`: ends re-measured every few probes, a range split at a "
            "candidate between its ends), verify each culprit with fresh, interleaved processes, "
            "more while unclear. `found` (exit 0) only when every step is verified; *wrong exit 0 "
            "today* counts what the search named, verified or not. "
            "*right*: found a true step (control: did not claim one). Trials are benchmark "
            "processes; the naive strategy is `git bisect run` with one process per commit "
            "(bad past the midpoint of the endpoints' single values), its *wrong* is how often "
            "it names a commit that is not a step; *ratio* = trials / naive trials.",
            "",
            "Noise models:",
            models,
            "",
            *rows,
            "",
        ]
    )


def write_section(path: Path, section: str) -> None:
    """Replace this section of RESULTS.md, keeping the others."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# bench results\n"
    if TITLE in old:
        head, rest = old.split(TITLE, 1)
        nxt = rest.find("\n## ")
        new = head + section + (rest[nxt:] if nxt >= 0 else "")
    else:
        new = old.rstrip("\n") + "\n\n" + section
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    # 3,000: with no error seen, the one-sided 95% upper bound of the rate is 0.1%.
    p.add_argument("--runs", type=int, default=3000, help="bisections per model and rule")
    p.add_argument("--commits", type=int, default=64)
    p.add_argument("--models", default=",".join(m.name for m in MODELS))
    p.add_argument("--rules", default=",".join(RULES))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 bisections of 16 commits per model, one process",
    )
    p.add_argument("--write", action="store_true", help=f"write the section into {RESULTS}")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.commits, args.jobs = 3, 16, 1
    args.models = [m for m in args.models.split(",") if m]
    strategies = [*[r for r in args.rules.split(",") if r], "naive"]
    t0 = time.monotonic()
    results = run_all(args.models, strategies, args.runs, args.commits, args.jobs)
    section = render(summarize(results, args.models, strategies), args, time.monotonic() - t0)
    print(section)
    if args.write:
        write_section(args.results, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
