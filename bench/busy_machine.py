"""A busy machine, for real: `bisector run` on a CPU-timed benchmark with a CPU hog beside it.

The simulation (bench/simulate.py, noise model `cpu-hog`) says what the rules do under hog
episodes; this checks it on this machine. Each case builds a git repository of N commits
whose `bench.py` times a pure-Python loop (real wall-clock latency, so a hog on the same
cores slows it, unevenly) and runs `bisector run --fresh` through the CLI while hog
processes (`while True: pass`, one per core) are switched on and off at random
(SIGSTOP / SIGCONT every 0.5-3 s), so trials land in and out of hog episodes:

  step      the loop does 25% more work from a planted commit on: exit 0 must name it
            (exit 4 is the honest answer when the hog hides it; a wrong exit 0 never);
  nothing   no commit changes the work (docs-only commits): exit 0 is always wrong
            (exit 3 or 4 are right).

Usage: python bench/busy_machine.py [--reps 4] [--commits 24] [--out FILE]
Prints a Markdown table (and appends it to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bisector.testing.gitutil import commit_all, git, make_repo, tag  # noqa: E402

BENCH = """\
import json, pathlib, time
work = int(pathlib.Path("work.txt").read_text())
samples = []
for _ in range(5):
    t0 = time.perf_counter()
    x = 0
    for i in range(work):
        x += i * i % 7
    samples.append((time.perf_counter() - t0) * 1000.0)
print(json.dumps({"latency_ms": samples}))
"""

CONFIG = {
    "benchmark": {
        "command": [sys.executable, "bench.py"],
        "timeout": "120s",
        "repeats": {"min": 3, "max": 12},
    },
    "metrics": {"latency_ms": {"direction": "lower", "threshold": "10%"}},
    "environment": {"builder": "local"},
}


def build(path: Path, n: int, culprit: int | None) -> str:
    """A repo of `n` commits tagged good/bad; returns the culprit's sha (or '')."""
    make_repo(path)
    (path / "bench.py").write_text(BENCH)
    (path / "bisector.yaml").write_text(json.dumps(CONFIG))
    (path / "work.txt").write_text("200000\n")
    commit_all(path, "bench", tag="good")
    sha = ""
    for i in range(1, n):
        if culprit is not None and i == culprit:
            (path / "work.txt").write_text("250000\n")
            commit_all(path, "more work per request")
            sha = git(path, "rev-parse", "HEAD").strip()
        else:
            (path / f"notes{i}.md").write_text(f"note {i}\n")
            commit_all(path, f"docs {i}")
    tag(path, "bad")
    return sha


@contextmanager
def hog(cores: int, seed: int) -> Iterator[None]:
    """`cores` busy loops, paused and resumed at random until the block ends."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(cores)
    ]
    stop = threading.Event()
    rng = random.Random(seed)

    def toggle() -> None:
        on = True
        while not stop.wait(rng.uniform(0.5, 3.0)):
            on = not on
            for p in procs:
                os.kill(p.pid, signal.SIGCONT if on else signal.SIGSTOP)

    thread = threading.Thread(target=toggle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for p in procs:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait()


def bisect(repo: Path) -> tuple[int, dict[str, object]]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "bisector", "run", "--repo", str(repo), "--good", "good",
         "--bad", "bad", "--json", "--fresh"],
        capture_output=True, text=True, env=env, timeout=3600, check=False,
    )  # fmt: skip
    try:
        doc = json.loads(out.stdout)
    except json.JSONDecodeError:
        doc = {"error": out.stderr.strip().splitlines()[-1:]}
    return out.returncode, doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--commits", type=int, default=24)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cores = os.cpu_count() or 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="busy-") as tmp:
        for case in ("step", "nothing"):
            for rep in range(args.reps):
                repo = Path(tmp) / f"{case}{rep}"
                culprit = (
                    random.Random(rep).randrange(4, args.commits - 2) if case == "step" else None
                )
                want = build(repo, args.commits, culprit)
                t0 = time.monotonic()
                with hog(cores, seed=1000 * rep + len(case)):
                    code, doc = bisect(repo)
                wall = time.monotonic() - t0
                named = (
                    (doc.get("culprit") or {}).get("commit", "") if isinstance(doc, dict) else ""
                )
                if code == 0:
                    verdict = "right" if want and named == want else "WRONG exit 0"
                elif code in (3, 4):
                    verdict = (
                        "honest" if case == "step" and code == 4 or case == "nothing" else "missed"
                    )
                else:
                    verdict = f"error {code}"
                rows.append((case, rep, code, verdict, doc.get("measurements"), round(wall)))
                print(rows[-1], flush=True)
    lines = [
        f"### A busy machine, for real ({cores} cores, {cores} hog processes switched on/off "
        f"every 0.5-3 s; {args.commits} commits; threshold 10%, planted step +25%)",
        "",
        "| case | rep | exit | verdict | trials | wall (s) |",
        "| --- | --- | --- | --- | --- | --- |",
        *(f"| {c} | {r} | {e} | {v} | {m} | {w} |" for c, r, e, v, m, w in rows),
        "",
        f"- wrong exit 0: {sum(1 for r in rows if r[3] == 'WRONG exit 0')} of {len(rows)} runs",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
