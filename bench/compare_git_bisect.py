"""bisector vs a naive `git bisect run`, side by side on the same generated repositories.

For each case (size x culprit kind x linear/merges, 5% noise, a 10-30% regression, a few
untestable commits) it builds one sample repository (bisector.testing.sample) and runs, on it,
`reps` times each:

  bisector  `bisector run --good v2.3.0 --bad v2.4.0 --fresh` in-process (run_bisection),
            with a cold store (environments, journal) every repetition;
  git       one calibration run of the naive script at v2.3.0 (threshold = its median x
            1.05, the 5% the bisector config also uses), then `git bisect start v2.4.0
            v2.3.0 && git bisect run python bench/naive_bisect_step.py`.

Per run it records wall time, benchmark executions (bisector: journaled trials; git:
runs of bench.py, calibration included) and the verdict: `exact` (named the planted
culprit: the commit that introduced it or, with merges, the first-parent merge that
brought it in -- bisector walks first-parent, git bisect all commits, either is right),
`range` (an honest range that contains it: bisector's `inconclusive`, git's "could be any
of"), `wrong`, `missed` (not reproduced / no answer) or `error`. Noise is drawn afresh
in every benchmark process, so repetitions on one repository are independent trials.

Usage: python bench/compare_git_bisect.py [--sizes 64,256,1024] [--reps N] [--dep-reps M]
       [--quick] [--out bench/RESULTS.md] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bisector.errors import BisectorError  # noqa: E402
from bisector.testing import gitutil  # noqa: E402
from bisector.testing.sample import SampleRepo, SampleSpec, build_sample_repo  # noqa: E402

NAIVE_SCRIPT = Path(__file__).resolve().with_name("naive_bisect_step.py")
GOOD, BAD = "v2.3.0", "v2.4.0"
NAIVE_MARGIN = 1.05
SLOWDOWNS = (0.10, 0.15, 0.20, 0.30)

Verdict = Literal["exact", "range", "wrong", "missed", "error"]
Kind = Literal["code", "dependency"]


@dataclass(frozen=True)
class Case:
    n_commits: int
    kind: Kind
    merges: bool
    culprit: int
    slowdown: float
    untestable: tuple[int, ...]
    noise: float = 0.05

    @property
    def name(self) -> str:
        shape = "merges" if self.merges else "linear"
        return f"{self.n_commits}/{self.kind}/{shape}"

    def spec(self) -> SampleSpec:
        return SampleSpec(
            n_commits=self.n_commits,
            culprit=self.culprit,
            kind=self.kind,
            slowdown=self.slowdown,
            noise=self.noise,
            untestable=self.untestable,
            merges=self.merges,
            culprit_in_branch=self.merges,
            mode="sim",
            builder="local" if self.kind == "code" else "venv",
            # repeats.min 3 is the config's default (a user who sets nothing gets it);
            # max 12 as in the earlier runs of this bench
            repeats=(3, 12),
        )


@dataclass(frozen=True)
class ToolRun:
    tool: Literal["bisector", "git"]
    wall_s: float
    executions: int
    verdict: Verdict
    named: tuple[str, ...]
    note: str = ""


def make_case(n_commits: int, kind: Kind, merges: bool, seed: int) -> Case:
    """A reproducible case: culprit in the middle half, 3 untestable commits away from it."""
    rng = random.Random(f"{seed}/{n_commits}/{kind}/{merges}")
    lo, hi = max(2, n_commits // 4), max(3, n_commits * 3 // 4)
    if merges:  # plant it inside a feature branch: those land at every 6th change
        choices = [i for i in range(lo, hi + 1) if i % 6 == 0 and i != n_commits]
        culprit = rng.choice(choices) if choices else 6
    else:
        culprit = rng.randint(lo, hi)
    pool = [i for i in range(2, n_commits) if abs(i - culprit) > 1]
    untestable = tuple(sorted(rng.sample(pool, k=min(3, len(pool)))))
    return Case(n_commits, kind, merges, culprit, rng.choice(SLOWDOWNS), untestable)


def _where(repo: SampleRepo, named: Sequence[str]) -> str:
    """Where a wrong answer points, in first-parent positions (culprit's position for scale)."""
    pos = {sha: i for i, sha in enumerate(repo.commits)}
    at = [f"#{pos[s]}" if s in pos else f"{s[:10]} (in a feature branch)" for s in named[:3]]
    return f"named {', '.join(at) or 'nothing'}; culprit #{pos[repo.culprit_first_parent]}"


def _judge(repo: SampleRepo, named: Sequence[str], exact: bool) -> Verdict:
    truth = {repo.culprit, repo.culprit_first_parent}
    if not named:
        return "missed"
    if exact:
        return "exact" if named[0] in truth else "wrong"
    return "range" if truth & set(named) else "wrong"


def run_bisector(repo: SampleRepo) -> ToolRun:
    """`bisector run --good v2.3.0 --bad v2.4.0 --fresh` on a cold store."""
    from bisector.engine.pipeline import RunRequest, run_bisection

    shutil.rmtree(repo.path / ".bisector", ignore_errors=True)
    t0 = time.monotonic()
    try:
        doc = run_bisection(
            RunRequest(good=GOOD, bad=BAD, repo=repo.path, fresh=True)
        ).document.to_json()
    except BisectorError as exc:
        return ToolRun(
            "bisector", time.monotonic() - t0, 0, "error", (), f"{type(exc).__name__}: {exc}"
        )
    wall = time.monotonic() - t0
    status = doc["status"]
    if status == "found":
        named: tuple[str, ...] = (doc["culprit"]["commit"],)
        verdict = _judge(repo, named, exact=True)
    elif status == "inconclusive":
        named = tuple(doc["details"].get("candidates", []))
        verdict = _judge(repo, named, exact=False)
    else:
        named, verdict = (), "missed"
    note = status if verdict in ("exact", "range") else f"{status}: {_where(repo, named)}"
    return ToolRun("bisector", wall, int(doc["measurements"]), verdict, named, note)


def run_git_bisect(repo: SampleRepo, scratch: Path) -> ToolRun:
    """Calibrate a threshold at the good release, then `git bisect run` the naive script."""
    scratch.mkdir(parents=True, exist_ok=True)
    counter = scratch / "executions.txt"
    counter.write_text("")
    spec = repo.spec
    env = {
        **os.environ,
        "SAMPLE_MODE": spec.mode,
        "SAMPLE_NOISE": repr(spec.noise),
        "SAMPLE_SAMPLES": str(spec.samples_per_process),
        "NAIVE_BUILDER": "venv" if spec.builder == "venv" else "local",
        "NAIVE_VENV": str(scratch / "venv"),
        "NAIVE_COUNTER": str(counter),
        "NAIVE_WHEELHOUSE": str(repo.wheelhouse or ""),
    }
    env.pop("NAIVE_THRESHOLD", None)
    step = [sys.executable, str(NAIVE_SCRIPT)]
    t0 = time.monotonic()
    gitutil.run(repo.path, "bisect", "reset", check=False)
    gitutil.run(repo.path, "checkout", "-q", GOOD, check=False)
    calib = subprocess.run(
        step, cwd=repo.path, env=env, capture_output=True, text=True, check=False
    )
    gitutil.run(repo.path, "checkout", "-q", "main", check=False)
    if calib.returncode != 0:
        return ToolRun(
            "git", time.monotonic() - t0, _count(counter), "error", (), "calibration failed"
        )
    env["NAIVE_THRESHOLD"] = repr(float(calib.stdout.strip().splitlines()[-1]) * NAIVE_MARGIN)
    gitutil.run(repo.path, "bisect", "start", BAD, GOOD, check=False)
    done = gitutil.run(repo.path, "bisect", "run", *step, env=env, check=False)
    gitutil.run(repo.path, "bisect", "reset", check=False)
    wall = time.monotonic() - t0
    out = done.stdout
    first = re.search(r"^([0-9a-f]{40}) is the first bad commit", out, re.M)
    if first:
        named: tuple[str, ...] = (first.group(1),)
        verdict = _judge(repo, named, exact=True)
    elif "could be any of" in out:
        tail = out.split("could be any of", 1)[1]
        named = tuple(re.findall(r"^([0-9a-f]{40})\b", tail, re.M))
        verdict = _judge(repo, named, exact=False)
    else:
        named, verdict = (), "error"
    if verdict == "error":
        note = (done.stderr.strip().splitlines() or ["no output"])[-1]
    else:
        note = "" if verdict in ("exact", "range") else _where(repo, named)
    return ToolRun("git", wall, _count(counter), verdict, named, note)


def _count(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@dataclass(frozen=True)
class CaseResult:
    case: Case
    build_s: float
    runs: tuple[tuple[ToolRun, ToolRun], ...]  # (bisector, git) per repetition


def compare_case(case: Case, workdir: Path, reps: int) -> CaseResult:
    """Build the case's repository once, then run both tools `reps` times on it."""
    base = workdir / case.name.replace("/", "-")
    t0 = time.monotonic()
    repo = build_sample_repo(base / "repo", case.spec())
    build_s = time.monotonic() - t0
    runs: list[tuple[ToolRun, ToolRun]] = []
    for rep in range(reps):
        # Alternate which tool goes first, so drift in the machine's load hits both alike.
        if rep % 2 == 0:
            b = run_bisector(repo)
            g = run_git_bisect(repo, base / "naive")
        else:
            g = run_git_bisect(repo, base / "naive")
            b = run_bisector(repo)
        runs.append((b, g))
    shutil.rmtree(base, ignore_errors=True)
    if repo.wheelhouse is not None:
        shutil.rmtree(repo.wheelhouse, ignore_errors=True)
    return CaseResult(case, build_s, tuple(runs))


# --- report ----------------------------------------------------------------------------


def _rate(runs: Sequence[ToolRun], ok: tuple[Verdict, ...] = ("exact",)) -> str:
    return f"{sum(r.verdict in ok for r in runs)}/{len(runs)}"


def _verdicts(runs: Sequence[ToolRun]) -> str:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def render(
    results: Sequence[CaseResult], command: str, started: dt.datetime, total_s: float
) -> str:
    lines = [
        "## bisector vs git bisect run",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; total {total_s / 60:.1f} min",
        f"- machine: {os.cpu_count()} cores, CPU only ({platform.platform()}, Python "
        f"{platform.python_version()}); shared with other engineers' test runs, so wall "
        "times are noisy (tool order alternates between repetitions)",
        f"- command: `{command}`",
        "- benchmark: sample serving repo in `sim` mode, 10 samples per process, 5% relative "
        "noise per sample plus a per-process offset (sd 2.5%); bisector `repeats: {min: 3, "
        "max: 12}` (min 3 is the config's default), threshold 5%",
        "- naive `git bisect run` (bench/naive_bisect_step.py): fresh venv + `pip install "
        "--no-index --find-links` per step for dependency cases, one benchmark run per step, "
        f"bad when median > {NAIVE_MARGIN:.2f} x the median of one run at {GOOD} "
        "(that calibration run counts in its time and executions)",
        "- right culprit: the planted commit or, with merges (culprit planted inside a feature "
        "branch), the merge that brought it to main; bisector walks first-parent, git bisect "
        "all commits. `range`: an honest range containing the culprit (bisector "
        '`inconclusive`, git bisect\'s "could be any of")',
        "- wall and executions: medians over repetitions; ratio = bisector / git bisect",
        "",
        "| case | culprit@ | slowdown | untestable | reps | bisector right | git right | "
        "bisector verdicts | git verdicts | bisector wall s | git wall s | wall ratio | "
        "bisector execs | git execs | execs ratio |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    all_b: list[ToolRun] = []
    all_g: list[ToolRun] = []
    for res in results:
        bs = [b for b, _ in res.runs]
        gs = [g for _, g in res.runs]
        all_b += bs
        all_g += gs
        bw, gw = statistics.median(r.wall_s for r in bs), statistics.median(r.wall_s for r in gs)
        be, ge = (
            statistics.median(r.executions for r in bs),
            statistics.median(r.executions for r in gs),
        )
        c = res.case
        lines.append(
            f"| {c.name} | {c.culprit} | {c.slowdown:.0%} | {','.join(map(str, c.untestable))} | "
            f"{len(res.runs)} | {_rate(bs)} | {_rate(gs)} | {_verdicts(bs)} | {_verdicts(gs)} | "
            f"{bw:.1f} | {gw:.1f} | {bw / gw:.2f} | {be:g} | {ge:g} | {be / max(ge, 1):.2f} |"
        )
    lines += [
        "",
        f"Overall: bisector named the right culprit in {_rate(all_b)} runs "
        f"({_rate(all_b, ('exact', 'range'))} right or an honest range), git bisect in "
        f"{_rate(all_g)} ({_rate(all_g, ('exact', 'range'))}).",
    ]
    for kind in ("code", "dependency"):
        pairs = [(b, g) for res in results if res.case.kind == kind for b, g in res.runs]
        if pairs:
            wall = statistics.median(b.wall_s / g.wall_s for b, g in pairs)
            exe = statistics.median(b.executions / max(g.executions, 1) for b, g in pairs)
            lines.append(
                f"- {kind}: median wall ratio {wall:.2f}, median executions ratio {exe:.2f} "
                f"over {len(pairs)} paired runs"
            )
    notes = [
        f"- {res.case.name} rep {i + 1} {r.tool}: {r.verdict}: {r.note}"
        for res in results
        for i, pair in enumerate(res.runs)
        for r in pair
        if r.verdict in ("error", "wrong", "missed")
    ]
    if notes:
        lines += [
            "",
            (
                "Failures (for the record; #k = position in first-parent history, root = #0, "
                "release-prep commits included, while `culprit@` above counts changes only):"
            ),
            *notes,
        ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (other sections stay), atomically."""
    title = section.splitlines()[0]
    old = path.read_text(encoding="utf-8") if path.exists() else "# bench results\n\n"
    if title in old:
        head, rest = old.split(title, 1)
        nxt = re.search(r"^## ", rest, re.M)
        new = head + section + ("\n" + rest[nxt.start() :] if nxt else "")
    else:
        new = old.rstrip("\n") + "\n\n" + section
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", default="64,256,1024", help="comma-separated n_commits")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each code case")
    p.add_argument("--dep-reps", type=int, default=1, help="repetitions of each dependency case")
    p.add_argument("--quick", action="store_true", help="smoke run: sizes 64, one repetition")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Markdown file to update (default bench/RESULTS.md; --quick: none)",
    )
    p.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temp dir)"
    )
    args = p.parse_args(argv)
    sizes = [64] if args.quick else [int(s) for s in args.sizes.split(",")]
    reps = (
        {"code": 1, "dependency": 1}
        if args.quick
        else {"code": args.reps, "dependency": args.dep_reps}
    )

    from bisector.log import configure

    configure()  # info level: trial-by-trial debug lines would drown the progress
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bisector-bench-"))
    results: list[CaseResult] = []
    kinds: tuple[Kind, ...] = ("code", "dependency")
    try:
        for n in sizes:
            for kind in kinds:
                for merges in (False, True):
                    case = make_case(n, kind, merges, args.seed)
                    res = compare_case(case, workdir, reps[kind])
                    results.append(res)
                    for b, g in res.runs:
                        print(
                            f"{case.name:24} build {res.build_s:5.1f}s | bisector {b.verdict:6} "
                            f"{b.wall_s:6.1f}s {b.executions:3d} runs | git {g.verdict:6} "
                            f"{g.wall_s:6.1f}s {g.executions:3d} runs",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    command = "python bench/compare_git_bisect.py" + (
        " " + " ".join(sys.argv[1:] if argv is None else argv) if (argv or sys.argv[1:]) else ""
    )
    section = render(results, command.strip(), started, time.monotonic() - t0)
    out = args.out or (None if args.quick else ROOT / "bench" / "RESULTS.md")
    if out is not None:
        write_section(out, section)
    print(section)
    return 0


__all__ = [
    "Case",
    "CaseResult",
    "ToolRun",
    "compare_case",
    "make_case",
    "render",
    "run_bisector",
    "run_git_bisect",
]

if __name__ == "__main__":
    sys.exit(main())
