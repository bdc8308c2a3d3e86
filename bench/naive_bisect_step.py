"""The script a user would hand to `git bisect run`: the baseline bisector is compared with.

What a careful-but-busy engineer writes in five minutes: (re)install the requirements
into a fresh virtual environment at every step (pip, from the local wheel folder), run
the benchmark once, and compare its median latency with a threshold hardcoded from one
run of the good release. Exit 0 (good), 1 (bad), 125 (cannot test: the benchmark said
so, or the install failed), as `git bisect run` expects.

Configured by environment variables, set by bench/compare_git_bisect.py:
  NAIVE_BUILDER    local (run with this interpreter) | venv (fresh venv + pip install)
  NAIVE_VENV       where to create the venv (outside the repository)
  NAIVE_WHEELHOUSE the --find-links folder
  NAIVE_THRESHOLD  latency in ms above which the commit is bad; unset: print the median
  NAIVE_COUNTER    a file that gets one line per benchmark execution
Standard library only: it runs at every step of `git bisect run`, cwd = the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path


def _python() -> str | None:
    if os.environ.get("NAIVE_BUILDER", "local") != "venv":
        return sys.executable
    venv = Path(os.environ["NAIVE_VENV"])
    shutil.rmtree(venv, ignore_errors=True)
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, check=False
    )
    if made.returncode != 0:
        return None
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--find-links",
        os.environ["NAIVE_WHEELHOUSE"],
        "-r",
        "requirements.txt",
    ]
    if subprocess.run(pip, capture_output=True, check=False).returncode != 0:
        return None
    return str(venv / "bin" / "python")


def main() -> int:
    python = _python()
    if python is None:
        return 125
    counter = os.environ.get("NAIVE_COUNTER")
    if counter:
        with open(counter, "a", encoding="utf-8") as f:
            f.write("run\n")
    done = subprocess.run([python, "bench.py"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return 125
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    median = statistics.median(json.loads(line)["latency_ms"])
    threshold = os.environ.get("NAIVE_THRESHOLD")
    if threshold is None:
        print(median)
        return 0
    return 1 if median > float(threshold) else 0


if __name__ == "__main__":
    sys.exit(main())
