"""The `ray` executor: the `Probe` of a run whose trials run on a Ray cluster, K at a time.

`RayMeasurer` is the engine's `Measurer` (same journal, same keys, same `trials` view)
with `take` sending trials to Ray workers (`ray_task.run_trial_task`) instead of running
them here. It keeps up to `workers` trials in flight:

- the commit `take` was asked for (the judge is waiting on it) goes first, as deep as
  it is expected to need;
- then the commits the hunt just measured that are not candidates (the endpoints while
  reproducing, parent and culprit while verifying): up to the verify floor of fresh
  trials each, ahead of the judge asking, and as many as the judge asked of the other;
- then the other points of the multisection round (`prefetch`, `core.multisect`): as many
  trials each as the judge needed for earlier points (from `repeats.min`, at most the
  judge's smallest workable count), so by the time the judge reaches them they are in.

Every trial is journaled here, on the driver, the moment it returns, whatever commit it
belongs to; a resumed run finds them in the journal like the local executor's. A trial
whose worker died (a killed process, a lost node) is sent again, elsewhere if Ray
schedules it so; it is not a failure of the commit. A trial of a commit that no longer
matters (outside the open range after a verdict) is cancelled: interrupted first
(`ray.cancel`: the worker kills the trial's process group and stays up, so no new worker
process has to start), then `ray.cancel(force=True)` if it has not ended within
`CANCEL_GRACE_S` (the worker is killed; its watchdog kills the trial's processes).

Trials are kept apart by hardware: the journal key of this executor's trials carries the
fingerprint of the nodes it runs on (`fingerprint.fairness_key`), so the judge compares a
candidate only with endpoint trials measured on the same kind of machine; a trial that
lands on another kind is journaled under its own key and not used by this run.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import ray
import ray.exceptions

from bisector.config import Config
from bisector.core import judge
from bisector.core.multisect import SearchFactory, multisection_factory
from bisector.core.types import Commit
from bisector.engine.measure import Measurer
from bisector.errors import BisectorError
from bisector.executors.archive import commit_archive, folder_archive
from bisector.executors.fingerprint import fairness_key
from bisector.executors.logs import TrialLogs
from bisector.executors.ray_setup import check_feasible, connect, ray_options
from bisector.executors.ray_task import fingerprint_task, run_trial_task
from bisector.log import get_logger
from bisector.ports import TrialStatus
from bisector.store.journal import TrialRow

log = get_logger("bisector.ray")

MAX_LOST = 3  # a trial whose worker died this many times is a failed attempt
FINGERPRINT_TIMEOUT_S = 300.0
CANCEL_GRACE_S = 5.0  # an interrupted trial not ended by then is cancelled by force
MAX_FOREIGN = 20  # trials landing on other hardware before the run gives up


@dataclass
class _Flight:
    commit: Commit
    kind: str  # demand | hot | point
    attempt: int = 1
    lost: int = 0
    first_reason: str = ""
    cancelled: bool = field(default=False)


class RayMeasurer(Measurer):
    def __init__(self, *, workers: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cfg: Config = kwargs["cfg"]
        self.workers = max(1, workers)
        self.search: SearchFactory | None = (
            multisection_factory(self.workers) if self.workers > 1 else None
        )
        opts = cfg.execution.ray
        self._builder_name: str = kwargs["builder_name"]
        self._node_type = opts.node_type
        self._cache_dir = opts.cache_dir
        budget = cfg.benchmark.repeats.budget()
        # The hunt's default candidate rule (`lean`, docs/judge.md) decides a clear point on
        # one process: start one trial a point, breadth first over the round, and go deeper
        # only as the judge asks for more (`take`), so K workers probe K points at once.
        self._point_cap = 1
        # An unclear point may take up to repeats.max: others are not measured that far ahead.
        self._point_cap_max = max(budget.min, judge.smallest_workable_repeats(judge.CLASSIFY_ALPHA))
        self._hot_floor = max(budget.min, judge.smallest_workable_repeats(judge.VERIFY_ALPHA))
        # Ray's driver prints the cluster's error messages ("a worker died ...") on stdout,
        # which is the --json document's: they go to stderr while we hold the connection.
        self._stdout = sys.stdout
        sys.stdout = sys.stderr
        try:
            self._owns = connect(opts.address)
        except BaseException:
            sys.stdout = self._stdout
            raise
        try:
            options = ray_options(dict(opts.resources_per_trial), opts.node_type)
            check_feasible(options)
            self._remote = ray.remote(run_trial_task).options(**options)
            probe = ray.remote(fingerprint_task).options(**options)
            self.fingerprint: dict[str, str] = ray.get(
                probe.remote(opts.node_type), timeout=FINGERPRINT_TIMEOUT_S
            )
        except BaseException as exc:
            self._disconnect()
            super().close()
            if isinstance(exc, ray.exceptions.GetTimeoutError):
                raise BisectorError(
                    f"no Ray worker ran the fingerprint probe within {FINGERPRINT_TIMEOUT_S:g}s",
                    hint="check `ray status`: are the nodes up and the resources free?",
                ) from None
            raise
        self._base_key: str = kwargs["bench_key"]
        self.bench_key = self._key(self.fingerprint)
        self._flights: dict[Any, _Flight] = {}
        self._cancelling: dict[Any, float] = {}  # cancelled refs -> when to force
        self._archives: dict[str, Any] = {}  # sha -> ObjectRef of its tar
        self._points: list[Commit] = []
        self._hot: dict[str, tuple[Commit, int]] = {}  # sha -> (commit, trials wanted)
        self._logs = TrialLogs(self.run_dir)
        self.lost_trials = 0
        self.cancelled_trials = 0
        self.foreign_trials = 0

    def _key(self, fingerprint: dict[str, str]) -> str:
        return f"{self._base_key}+fp-{fairness_key(fingerprint)}"

    # -- the Probe -----------------------------------------------------------------

    def take(self, commit: Commit) -> TrialStatus:
        """One more trial of `commit`, journaled before returning; others fill the workers."""
        if self.journal.failed_build(commit.sha, self.env_key(commit)) is not None:
            return TrialStatus.SKIP
        if any(p.sha == commit.sha for p in self._points):
            # The judge wants more of a point than it had: measure later points that far ahead.
            wanted = min(len(self.trials(commit)) + 1, self._point_cap_max)
            self._point_cap = max(self._point_cap, wanted)
        self._note_hot(commit)
        if commit.sha in self._hot:
            # The judge wants trial n+1 of one side of a pair (the endpoints, parent and
            # culprit): the other side will want as many, so both are measured that far.
            wanted = len(self.trials(commit)) + 1
            for sha, (hot, cap) in list(self._hot.items()):
                self._hot[sha] = (hot, max(cap, wanted))
        while True:
            if not any(f.commit.sha == commit.sha for f in self._flights.values()):
                self._submit(commit, "demand")
            self._fill(commit)
            # Cancelled trials hold their worker until they end: wake up for those too.
            watched = list(self._flights) + list(self._cancelling)
            ready, _ = ray.wait(watched, num_returns=1, timeout=CANCEL_GRACE_S)
            self._reap_cancelled()
            for ref in (r for r in ready if r in self._flights):
                landed = self._land(ref)
                if landed is not None and landed[0] == commit.sha:
                    return landed[1]

    def prefetch(self, commits: Any) -> None:
        """The round's points: measured ahead; in-flight trials of moot points are cancelled."""
        wanted = [c for c in commits if self.journal.failed_build(c.sha, self.env_key(c)) is None]
        self._points = wanted
        keep = {c.sha for c in wanted}
        for ref, flight in list(self._flights.items()):
            if flight.kind == "point" and flight.commit.sha not in keep:
                self._cancel(ref)

    def close(self) -> None:
        # Trials that finished after the last verdict are journaled too (nothing lost).
        if self._flights:
            done, _ = ray.wait(list(self._flights), num_returns=len(self._flights), timeout=0)
            for ref in done:
                with contextlib.suppress(BisectorError):
                    self._land(ref)
        for ref in list(self._flights):
            self._cancel(ref)
        for ref in self._cancelling:  # the run is over: no grace
            ray.cancel(ref, force=True)
        super().close()
        self._disconnect()

    def _disconnect(self) -> None:
        if self._owns:
            ray.shutdown()
        sys.stdout = self._stdout

    # -- scheduling ----------------------------------------------------------------

    def _note_hot(self, commit: Commit) -> None:
        if any(p.sha == commit.sha for p in self._points) or commit.sha in self._hot:
            return
        self._hot[commit.sha] = (commit, len(self.trials(commit)) + self._hot_floor)
        while len(self._hot) > 2:
            self._hot.pop(next(iter(self._hot)))

    def _in_flight(self, sha: str) -> int:
        return sum(1 for f in self._flights.values() if f.commit.sha == sha)

    def _fill(self, waiting: Commit) -> None:
        """Speculative trials for idle workers, depth first in the order the judge will ask:
        the commit it waits on, the hot ones, then the round's points in its order. Depth
        first, a point is decided sooner, and a verdict that makes the later points moot
        leaves fewer of their trials to cancel."""
        wants = [(c, cap, "hot") for c, cap in self._hot.values()]
        wants += [(c, self._point_cap, "point") for c in self._points]
        mine = [w for w in wants if w[0].sha == waiting.sha]
        wants = mine + [w for w in wants if w[0].sha != waiting.sha]
        for commit, cap, kind in wants:
            if self._busy() >= self.workers:
                return
            if self.untestable(commit):
                continue
            have = len(self.trials(commit)) + self._in_flight(commit.sha)
            for _ in range(min(cap - have, self.workers - self._busy())):
                self._submit(commit, kind)

    def _archive(self, commit: Commit) -> Any:
        if commit.sha not in self._archives:
            synthetic = self._synthetic.get(commit.sha)
            data = (
                folder_archive(synthetic)
                if synthetic is not None
                else commit_archive(self.git.root, commit.sha)
            )
            self._archives[commit.sha] = ray.put(data)
        return self._archives[commit.sha]

    def _submit(self, commit: Commit, kind: str, flight: _Flight | None = None) -> None:
        spec = {
            "sha": commit.sha,
            "checkout_id": commit.sha.replace("+", "_").replace(":", "-"),
            "builder": self._builder_name,
            "environment": self.cfg.environment.model_dump(mode="json"),
            "command": list(self.cfg.benchmark.command),
            "env": dict(self.cfg.benchmark.env),
            "timeout_s": self.cfg.benchmark.timeout,
            "cache_dir": self._cache_dir,
            "node_type": self._node_type,
        }
        ref = self._remote.remote(spec, self._archive(commit))
        self._flights[ref] = flight or _Flight(commit, kind)

    def _busy(self) -> int:
        """Workers held: trials in flight and cancelled ones not yet ended."""
        return len(self._flights) + len(self._cancelling)

    def _cancel(self, ref: Any) -> None:
        """Cancel a trial: interrupted first (the worker kills the trial's process group and
        stays up for the next trial); forced after `CANCEL_GRACE_S` (the worker process is
        killed, and its watchdog kills the trial's processes)."""
        flight = self._flights.pop(ref)
        flight.cancelled = True
        self.cancelled_trials += 1
        ray.cancel(ref, force=False)
        self._cancelling[ref] = time.monotonic() + CANCEL_GRACE_S
        log.debug("trial cancelled: no longer matters", commit=flight.commit.short)

    def _reap_cancelled(self) -> None:
        if not self._cancelling:
            return
        ended, _ = ray.wait(list(self._cancelling), num_returns=len(self._cancelling), timeout=0)
        for ref in ended:
            del self._cancelling[ref]
        now = time.monotonic()
        for ref, deadline in list(self._cancelling.items()):
            if now >= deadline:
                ray.cancel(ref, force=True)
                del self._cancelling[ref]

    # -- results -------------------------------------------------------------------

    def _land(self, ref: Any) -> tuple[str, TrialStatus] | None:
        """Journal a finished trial; (sha, status) when it is final, None when sent again."""
        flight = self._flights.pop(ref)
        commit = flight.commit
        try:
            out: dict[str, Any] = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # our code failed on the worker: a bug
            raise BisectorError(
                f"a Ray worker failed to run a trial of {commit.short}: {exc}",
                hint="check that the workers run the same bisector and Python version",
            ) from None
        except ray.exceptions.RayError as exc:  # the worker or its node died
            self.lost_trials += 1
            flight.lost += 1
            log.warning(
                "worker lost mid-trial; sending it again", commit=commit.short, error=str(exc)[:200]
            )
            if flight.lost <= MAX_LOST:
                self._submit(commit, flight.kind, flight)
                return None
            out = {
                "status": TrialStatus.FAILED.value,
                "reason": "its worker died",
                "build_failed": False,
            }
            out |= {"metrics": {}, "meta": {}, "node": "", "fingerprint": self.fingerprint}
        key = self.env_key(commit)
        if out["build_failed"]:
            path = self._logs.path(commit.sha, "build")
            path.write_bytes(out.get("build_log", b""))
            self.journal.record_build(commit.sha, key, False, str(path))
            return commit.sha, TrialStatus.SKIP
        status = TrialStatus(out["status"])
        if status is TrialStatus.FAILED and flight.attempt == 1:
            flight.attempt, flight.first_reason = 2, out.get("reason", "")
            log.info("trial failed, retrying once", commit=commit.short, reason=flight.first_reason)
            self._submit(commit, flight.kind, flight)
            return None
        reason = out.get("reason", "")
        if status is TrialStatus.FAILED:
            status, reason = TrialStatus.SKIP, f"failed twice: {flight.first_reason}; then {reason}"
        out_path, err_path = self._logs.path(commit.sha, "out"), self._logs.path(commit.sha, "err")
        out_path.write_bytes(out.get("stdout", b""))
        err_path.write_bytes(out.get("stderr", b""))
        fingerprint = out.get("fingerprint") or {}
        meta = {**out.get("meta", {}), "_node": out.get("node", ""), "_fingerprint": fingerprint}
        if reason:
            meta["_reason"] = reason
        bench_key = self._key(fingerprint)
        self.journal.add_trial(
            TrialRow(
                run_id=self.run_id,
                commit_sha=commit.sha,
                env_key=key,
                bench_key=bench_key,
                status=status.value,
                metrics={k: tuple(v) for k, v in out.get("metrics", {}).items()},
                meta=meta,
                exit_code=out.get("exit_code"),
                duration_s=out.get("duration_s"),
                log_out=str(out_path),
                log_err=str(err_path),
            )
        )
        if bench_key != self.bench_key:  # measured on other hardware: kept, not compared
            self.foreign_trials += 1
            if self.foreign_trials > MAX_FOREIGN:
                raise BisectorError(
                    "trials keep landing on nodes of different hardware",
                    hint="set execution.ray.node_type to a custom resource of one kind of node",
                )
            return None
        return commit.sha, status


def open_ray_measurer(workers: int) -> Any:
    """The pipeline's `OpenMeasurer` for the ray executor with `workers` in flight."""

    def open_measurer(**kwargs: Any) -> RayMeasurer:
        return RayMeasurer(workers=workers, **kwargs)

    return open_measurer
