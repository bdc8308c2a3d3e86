"""The benchmark's own files, checked before the daemon hunts, as `run` checks them.

Each commit is measured in its own checkout, so a script `benchmark.command` names that a
commit lacks (never committed, or committed after the last known good) fails every trial
there. `run` refuses such endpoints up front (`engine.benchfiles`); the daemon does the
same, as a config problem: at start for the head it will measure (exit 2, nothing
written), and in each cycle for the range, before the range is recorded or measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bisector.config import Config
from bisector.core.types import Commit
from bisector.engine.benchfiles import check_benchmark_files, endpoint_label
from bisector.errors import BisectorError, ConfigError
from bisector.gitrepo import GitRepo
from bisector.store.daemon_state import LastGood

__all__ = ["check_head", "check_range"]


def _check(git: GitRepo, cfg: Config, endpoints: Sequence[tuple[str, Commit]]) -> None:
    try:
        check_benchmark_files(git, cfg.benchmark.command, endpoints)
    except BisectorError as exc:  # the daemon's config, not a run's input
        raise ConfigError(exc.message, hint=exc.hint) from exc


def check_head(repo: Path, cfg: Config) -> None:
    """At start: the head the daemon measures (`daemon.branch`) holds the benchmark's files.

    With `daemon.remote` the head is only known after the cycle's fetch (a stale
    `origin/main` may lack a file a fetch brings), so the cycle checks it then. A branch
    or repository that cannot be read is left to the cycle, which reports it.

    :raises ConfigError: a file of the working tree the benchmark names is not in it.
    """
    if cfg.daemon.remote:
        return
    try:
        with GitRepo(repo) as git:
            head = git.resolve(cfg.daemon.branch)
            label = f"the daemon's head {cfg.daemon.branch} ({head.short})"
            _check(git, cfg, [(label, head)])
    except ConfigError:
        raise
    except BisectorError:
        return


def check_range(
    repo: Path, cfg: Config, last_good: LastGood, head: Commit, head_label: str
) -> None:
    """Before a range is recorded and measured: both endpoints hold the benchmark's files,
    named as `run` names them (`the good endpoint v2.3.1 (abc1234)`).

    :raises ConfigError: a file of the working tree the benchmark names is missing at one.
    """
    with GitRepo(repo) as git:
        good = git.resolve(last_good.sha)
        _check(
            git,
            cfg,
            [
                (endpoint_label("good", last_good.ref, good), good),
                (endpoint_label("bad", head_label, head), head),
            ],
        )
