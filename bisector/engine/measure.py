"""Taking and reading trials of a commit: checkout, environment, runner, journal.

`take` measures one more process of a commit and journals it before returning;
`trials` reads the journaled trials back, `samples` their samples of one metric (grouped
by process) for the judge: the `Probe` port of the sampling loop. A commit
whose environment fails to build, or whose benchmark says 125 / fails twice, is
untestable, and that too is journaled so a resumed run does not build it again.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from bisector.builders.base import BuiltEnv
from bisector.builders.registry import make_builder
from bisector.config import Config
from bisector.core.multisect import SearchFactory
from bisector.core.sampling import samples_of
from bisector.core.types import Commit
from bisector.engine import envrecord
from bisector.engine.checkouts import Checkouts
from bisector.engine.overlay import OverlayVcs
from bisector.engine.runner import TrialRunner
from bisector.errors import BuildError
from bisector.gitrepo import GitRepo
from bisector.log import get_logger
from bisector.ports import TrialStatus
from bisector.preload import PreloadPool
from bisector.store.journal import Journal, TrialRow

log = get_logger("bisector.measure")

_FILES_NAMED = 5  # a warning names this many changed files, then "and N more"


class Measurer:
    #: The hunt's search (None: bisection); the ray executor sets a multisection.
    search: SearchFactory | None = None

    def __init__(
        self,
        *,
        cfg: Config,
        git: GitRepo,
        journal: Journal,
        run_id: str,
        run_dir: Path,
        store: Path,
        builder_name: str,
        bench_key: str,
        reuse_across_runs: bool,
        jobs: int = 1,
    ) -> None:
        self.cfg, self.git, self.journal, self.run_id = cfg, git, journal, run_id
        self.run_dir, self.store, self.bench_key = run_dir, store, bench_key
        self.reuse = reuse_across_runs
        # The ray executor's kinds of machine: node type -> (its benchmark key, fingerprint).
        self.hardware: dict[str | None, tuple[str, dict[str, str]]] = {}
        # What every trial runs; `engine.reference` adds the reference file's variable.
        self.benchmark = cfg.benchmark
        # Builders read requirement files through the overlay, so synthetic states of
        # isolation (see `add_synthetic`) build like commits.
        self.vcs = OverlayVcs(git)
        self.builder = make_builder(
            builder_name, vcs=self.vcs, environment=cfg.environment, store=store, jobs=jobs
        )
        self.checkouts = Checkouts(git, store)
        self._synthetic: dict[str, Path] = {}
        self._env_keys: dict[str, str] = {}
        self._attached: set[tuple[str, str]] = set()
        self._restore_warned = False
        self._lock = threading.Lock()
        # `benchmark.preload`: one fork server per environment, for this run only.
        self.preload = (
            PreloadPool(cfg.benchmark.preload, repo_root=git.root, log_dir=run_dir / "preload")
            if cfg.benchmark.preload
            else None
        )

    def __enter__(self) -> Measurer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.preload is not None:
            self.preload.close()
        self.builder.close()
        self.checkouts.close()
        # Synthetic states' folders go with the worktrees: they are rebuilt from their
        # content-addressed recipe if a killed run resumes (its trials are journaled).
        for folder in self._synthetic.values():
            shutil.rmtree(folder, ignore_errors=True)

    def env_key(self, commit: Commit) -> str:
        with self._lock:
            if commit.sha not in self._env_keys:
                self._env_keys[commit.sha] = self.builder.env_key(commit)
            return self._env_keys[commit.sha]

    def keys_read(self) -> list[tuple[str, str]]:
        """(commit, environment key) of every commit this measurer has read or measured."""
        with self._lock:
            return list(self._env_keys.items())

    def trials(self, commit: Commit) -> list[TrialRow]:
        """Journaled trials of `commit` in this environment and benchmark, in the order taken
        (of every run unless `reuse_across_runs` is off); the `Probe` port's view."""
        return self.journal.trials(
            commit.sha,
            self.env_key(commit),
            self.bench_key,
            since_run=None if self.reuse else self.run_id,
        )

    def untestable(self, commit: Commit) -> bool:
        if self.journal.failed_build(commit.sha, self.env_key(commit)) is not None:
            return True
        return any(t.status == TrialStatus.SKIP.value for t in self.trials(commit))

    def samples(self, commit: Commit, metric: str) -> list[list[float]]:
        """Samples of `metric` grouped by process, in the order they were taken."""
        return samples_of(self.trials(commit), metric)

    def prefetch(self, commits: Sequence[Commit]) -> None:
        todo = [c for c in commits if self.journal.failed_build(c.sha, self.env_key(c)) is None]
        if todo:
            self.builder.prefetch(todo)

    def take(self, commit: Commit) -> TrialStatus:
        """Measure one more process of `commit`; the trial is journaled before returning."""
        key = self.env_key(commit)
        checkout = self._synthetic.get(commit.sha) or self.checkouts.get(commit)
        try:
            built: BuiltEnv = self.builder.prepare(commit, checkout)
        except BuildError as exc:
            log_path = getattr(exc, "log_path", None)
            log.warning(
                "build failed: candidate untestable", commit=commit.short, log=str(log_path)
            )
            self.journal.record_build(
                commit.sha, key, False, str(log_path) if log_path else str(exc)
            )
            return TrialStatus.SKIP
        runner = TrialRunner(
            self.run_dir / _trial_dir(commit.sha),
            timeout_s=self.benchmark.timeout,
            # after the build too: an install that rewrites a tracked file is undone alike
            before_trial=None if commit.sha in self._synthetic else lambda: self.restore(commit),
        )
        preload = self.preload.launcher(built) if self.preload is not None else None
        # a container when built.launcher is set; else a fork of the preload server, if any
        result = runner.measure_in(built, self.benchmark, preload=preload)
        self.journal.add_trial(
            TrialRow(
                run_id=self.run_id,
                commit_sha=commit.sha,
                env_key=key,
                bench_key=self.bench_key,
                status=result.status.value,
                metrics=result.metrics,
                meta=result.meta,
                exit_code=result.exit_code,
                duration_s=result.duration_s,
                log_out=str(result.stdout_path),
                log_err=str(result.stderr_path),
            )
        )
        if result.ok and "+" not in commit.sha and (commit.sha, key) not in self._attached:
            self._attached.add((commit.sha, key))
            envrecord.attach(self.git.root, self.cfg, commit.sha, built, result.meta)
        return result.status

    def restore(self, commit: Commit) -> None:
        """Put back the tracked files of `commit`'s checkout that changed since it was
        checked out (by a trial, the build or the reference run), so every trial starts
        from the commit's files: a benchmark that rewrites a file (a config, a cache kept
        in the repository) would otherwise bias the commit with more trials. Warned once
        per run, naming the files; untracked files stay (`Checkouts.restore`)."""
        changed = self.checkouts.restore(commit)
        if not changed:
            return
        shown = ", ".join(changed[:_FILES_NAMED]) + (
            f" and {len(changed) - _FILES_NAMED} more" if len(changed) > _FILES_NAMED else ""
        )
        if self._restore_warned:
            log.debug("tracked files put back", commit=commit.short, files=shown)
            return
        self._restore_warned = True
        log.warning(
            "the benchmark (or its build) changed tracked files of its checkout; they are "
            "put back before each trial, so each trial starts from the commit's files "
            "(said once per run)",
            commit=commit.short,
            files=shown,
        )

    # -- synthetic states (isolation, bisector/isolate.py) ---------------------------

    def add_synthetic(
        self, commit: Commit, base_sha: str, checkout: Path, files: Mapping[str, bytes | None]
    ) -> None:
        """Measure `commit` (a synthetic id) in `checkout`; its files differ from `base_sha`'s
        by `files` (what the builder reads for its requirements)."""
        self.vcs.add(commit.sha, base_sha, files)
        self._synthetic[commit.sha] = checkout


def _trial_dir(sha: str) -> str:
    """Logs folder of a commit: `<sha12>`, or `<sha12>+<what>-<hash>` for a synthetic id."""
    head, _, rest = sha.partition("+")
    return head[:12] + ("+" + rest.replace(":", "-") if rest else "")
