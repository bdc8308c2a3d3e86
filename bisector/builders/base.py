"""What a builder hands the pipeline: `BuiltEnv`, and the runtime facts of an environment.

A builder turns a candidate commit (and its checkout) into a `BuiltEnv`: the interpreter
and environment variables its benchmark runs with, plus what the environment holds
(resolved packages, runtime facts) for the snapshot. Commits whose environments would be
identical share one *environment key*; `env_key` is cheap (git objects only, no build),
so the pipeline can tell which candidates share an environment before building any.

The `EnvBuilder` and `TrialLauncher` ports themselves live in `bisector.ports`; they are
re-exported here for the builders that name them.
"""

from __future__ import annotations

import os
from pathlib import Path

from bisector.ports import PYTHON_NAMES as PYTHON_NAMES
from bisector.ports import BuiltEnv as BuiltEnv
from bisector.ports import EnvBuilder as EnvBuilder
from bisector.ports import RuntimeFacts as RuntimeFacts
from bisector.ports import TrialLauncher as TrialLauncher


def checkout_pythonpath(checkout: Path) -> str:
    """`PYTHONPATH` that puts the checkout's code first (`src/` layout included)."""
    entries = [checkout]
    if (checkout / "src").is_dir():
        entries.insert(0, checkout / "src")
    return os.pathsep.join(str(e) for e in entries)
