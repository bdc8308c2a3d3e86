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
schedules it so; it is not a failure of the commit (an error the worker raised that Ray
could not send back is: `task_errors`). A trial of a commit that no longer
matters (outside the open range after a verdict) is cancelled: interrupted first, by
force after `CANCEL_GRACE_S` (`cancels.Cancelling`).

Trials are kept apart by hardware: the journal key of this executor's trials carries the
fingerprint of the nodes it runs on (`fingerprint.fairness_key`), so the judge compares a
candidate only with endpoint trials measured on the same kind of machine; a trial that
lands on another kind is journaled under its own key and not used by this run. Over
several node types (`node_types.Pins`) each candidate is pinned to one type and the
references it is judged against are measured on that type too (`compare`, which the
hunt calls before each comparison), and speculatively on every type the round's points
are pinned to.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
import ray.exceptions

from bisector.config import Config
from bisector.core import judge, verify
from bisector.core.multisect import SearchFactory, multisection_factory
from bisector.core.types import Commit
from bisector.engine.measure import Measurer
from bisector.errors import BisectorError
from bisector.executors.archive import checkout_archive
from bisector.executors.cancels import Cancelling
from bisector.executors.fingerprint import fairness_key
from bisector.executors.logs import TrialLogs
from bisector.executors.node_types import NodeType, Pins
from bisector.executors.ray_setup import connect, trial_shapes
from bisector.executors.ray_task import fingerprint_task, run_trial_task
from bisector.executors.task_errors import Lost, landed
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
    node_type: NodeType = None
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
        self._cache_dir = opts.cache_dir
        budget = cfg.benchmark.repeats.budget()
        # The hunt's default candidate rule (`lean`, docs/judge.md) decides a clear point on
        # one process: start one trial a point, breadth first over the round, and go deeper
        # only as the judge asks for more (`take`), so K workers probe K points at once.
        self._point_cap = 1
        # An unclear point may take up to repeats.max: others are not measured that far ahead.
        self._point_cap_max = max(budget.min, judge.smallest_workable_repeats(judge.CLASSIFY_ALPHA))
        # Fresh trials a side the default rule needs of the endpoints and a verified pair.
        self._hot_floor = max(budget.min, verify.EARLY_PROCESSES)
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
            shapes = trial_shapes(opts)
            self._pins = Pins(list(shapes))
            self._remotes: dict[NodeType, Any] = {}
            probes = {}
            for node_type, options in shapes.items():
                self._remotes[node_type] = ray.remote(run_trial_task).options(**options)
                probe = ray.remote(fingerprint_task).options(**options)
                probes[node_type] = probe.remote(node_type)
            self._fingerprints: dict[NodeType, dict[str, str]] = {
                t: ray.get(ref, timeout=FINGERPRINT_TIMEOUT_S) for t, ref in probes.items()
            }
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
        self._keys = {t: self._key(fp) for t, fp in self._fingerprints.items()}
        # The run's key: the first node type's; its reports read every type's (`hardware`).
        self.hardware = {t: (self._keys[t], self._fingerprints[t]) for t in self._pins.types}
        self.bench_key = self._keys[self._pins.types[0]]
        self._refs: list[Commit] = []
        self._flights: dict[Any, _Flight] = {}
        self._cancelling = Cancelling(CANCEL_GRACE_S)
        self._archives: dict[str, Any] = {}  # sha -> ObjectRef of its tar
        self._links_out: set[str] = set()  # symlinks workers leave out, warned of once
        self._points: list[Commit] = []
        self._hot: dict[str, tuple[Commit, int, NodeType]] = {}  # sha -> (commit, wanted, on)
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
            for sha, (hot, cap, on) in list(self._hot.items()):
                self._hot[sha] = (hot, max(cap, wanted), on)
        return self._await(commit, self._pins.type_for(commit.sha))

    def _await(self, commit: Commit, node_type: NodeType) -> TrialStatus:
        """The next trial of `commit` on `node_type` (sent unless one is in flight)."""
        while True:
            if not self._in_flight(commit.sha, node_type):
                self._submit(commit, "demand", node_type)
            self._fill(commit, node_type)
            # Cancelled trials hold their worker until they end: wake up for those too.
            watched = list(self._flights) + self._cancelling.refs()
            ready, _ = ray.wait(watched, num_returns=1, timeout=CANCEL_GRACE_S)
            self._cancelling.reap()
            for ref in (r for r in ready if r in self._flights):
                landed = self._land(ref)
                if landed is not None and landed[:2] == (commit.sha, node_type):
                    return landed[2]

    def trials(self, commit: Commit) -> list[TrialRow]:
        """Journaled trials of `commit` on the node type it is read on now (`Pins`)."""
        return self._trials_on(commit, self._pins.type_for(commit.sha))

    def _trials_on(self, commit: Commit, node_type: NodeType) -> list[TrialRow]:
        return self.journal.trials(
            commit.sha,
            self.env_key(commit),
            self._keys[node_type],
            since_run=None if self.reuse else self.run_id,
        )

    def compare(self, candidate: Commit | None, refs: Sequence[Commit]) -> None:
        """The hunt judges `candidate` (None: the endpoints themselves) against `refs` next:
        read and take the refs' trials on the candidate's node type, measured there first
        as far as they are on any other type (at most repeats.max), so the judge sees as
        many of them as a candidate of another type would."""
        self._pins.refs = frozenset()
        if candidate is None:
            self._pins.view = self._pins.types[0]
        else:
            self._pins.view = self._pin(candidate)
        self._pins.refs = frozenset(r.sha for r in refs)
        self._refs = list(refs)
        view, cap = self._pins.view, self.cfg.benchmark.repeats.budget().max
        wanted = {r.sha: self._ref_target(r, cap) for r in refs}
        for ref in refs:  # all at once, so they run in parallel
            missing = wanted[ref.sha] - len(self._trials_on(ref, view))
            for _ in range(missing - self._in_flight(ref.sha, view)):
                if self.untestable(ref):
                    break
                self._submit(ref, "hot", view)
        for ref in refs:
            while len(self._trials_on(ref, view)) < wanted[ref.sha] and not self.untestable(ref):
                self._await(ref, view)

    def _ref_target(self, ref: Commit, cap: int) -> int:
        return min(cap, max(len(self._trials_on(ref, t)) for t in self._pins.types))

    def _pin(self, commit: Commit) -> NodeType:
        return self._pins.pin(commit.sha, lambda t: len(self._trials_on(commit, t)))

    def prefetch(self, commits: Any) -> None:
        """The round's points: measured ahead; in-flight trials of moot points are cancelled."""
        wanted = [c for c in commits if self.journal.failed_build(c.sha, self.env_key(c)) is None]
        for commit in wanted:  # in the round's order: new points take the node types in turn
            self._pin(commit)
        self._points = wanted
        keep = {c.sha for c in wanted}
        moot = [
            r for r, f in self._flights.items() if f.kind == "point" and f.commit.sha not in keep
        ]
        self._cancel(moot)

    def close(self) -> None:
        try:  # disconnected however it ends: a daemon's next cycle connects afresh
            # Trials that finished after the last verdict are journaled too (nothing lost).
            self._cancel(list(self._flights))
            self._cancelling.force_all()
            super().close()
        finally:
            self._disconnect()

    def _disconnect(self) -> None:
        if self._owns:
            ray.shutdown()
        sys.stdout = self._stdout

    # -- scheduling ----------------------------------------------------------------

    def _note_hot(self, commit: Commit) -> None:
        on, held = self._pins.type_for(commit.sha), self._hot.get(commit.sha)
        if any(p.sha == commit.sha for p in self._points) or (held and held[2] == on):
            return
        self._hot.pop(commit.sha, None)  # read on another node type now: measured there
        self._hot[commit.sha] = (commit, len(self.trials(commit)) + self._hot_floor, on)
        while len(self._hot) > 2:
            self._hot.pop(next(iter(self._hot)))

    def _in_flight(self, sha: str, node_type: NodeType) -> int:
        return sum(f.commit.sha == sha and f.node_type == node_type for f in self._flights.values())

    def _fill(self, waiting: Commit, waiting_on: NodeType) -> None:
        """Speculative trials for idle workers, depth first in the order the judge will ask:
        the commit it waits on, the hot ones, the references on the other node types the
        round's points are pinned to, then the round's points in its order. Depth first, a
        point is decided sooner, and a verdict that makes the later points moot leaves
        fewer of their trials to cancel."""
        wants = [(c, cap, "hot", on) for c, cap, on in self._hot.values()]
        if self._pins.mixed:
            cap = self.cfg.benchmark.repeats.budget().max
            others = {self._pins.pinned(p.sha) for p in self._points} - {self._pins.view}
            wants += [(r, self._ref_target(r, cap), "hot", t) for t in others for r in self._refs]
        wants += [(c, self._point_cap, "point", self._pins.pinned(c.sha)) for c in self._points]
        mine = [w for w in wants if (w[0].sha, w[3]) == (waiting.sha, waiting_on)]
        wants = mine + [w for w in wants if (w[0].sha, w[3]) != (waiting.sha, waiting_on)]
        for commit, cap, kind, on in wants:
            if self._busy() >= self.workers:
                return
            if self.untestable(commit):
                continue
            have = len(self._trials_on(commit, on)) + self._in_flight(commit.sha, on)
            for _ in range(min(cap - have, self.workers - self._busy())):
                self._submit(commit, kind, on)

    def _archive(self, commit: Commit) -> Any:
        if commit.sha not in self._archives:
            folder, root = self._synthetic.get(commit.sha), self.git.root
            data = checkout_archive(root, commit.sha, folder, warned=self._links_out)
            self._archives[commit.sha] = ray.put(data)
        return self._archives[commit.sha]

    def _submit(
        self, commit: Commit, kind: str, node_type: NodeType, flight: _Flight | None = None
    ) -> None:
        spec = {
            "sha": commit.sha,
            "checkout_id": commit.sha.replace("+", "_").replace(":", "-"),
            "builder": self._builder_name,
            "environment": self.cfg.environment.model_dump(mode="json"),
            "command": list(self.cfg.benchmark.command),
            "env": dict(self.cfg.benchmark.env),
            "timeout_s": self.cfg.benchmark.timeout,
            "cache_dir": self._cache_dir,
            "node_type": node_type,
        }
        ref = self._remotes[node_type].remote(spec, self._archive(commit))
        self._flights[ref] = flight or _Flight(commit, kind, node_type)

    def _busy(self) -> int:
        """Workers held: trials in flight and cancelled ones not yet ended."""
        return len(self._flights) + len(self._cancelling)

    def _cancel(self, refs: list[Any]) -> None:
        """Cancel trials that no longer matter (`cancels.Cancelling`: interrupted, forced
        after the grace); those already ended are journaled instead, never cancelled."""
        ended = self._cancelling.cancel(refs)
        for ref in (r for r in refs if r not in ended):
            flight = self._flights.pop(ref)
            flight.cancelled = True
            self.cancelled_trials += 1
            log.debug("trial cancelled: no longer matters", commit=flight.commit.short)
        before = set(self._flights)
        for ref in ended:
            with contextlib.suppress(BisectorError):  # a moot trial's error fails nothing
                self._land(ref)
        resent = [r for r in self._flights if r not in before]  # a lost or failed one
        if resent:
            self._cancel(resent)

    # -- results -------------------------------------------------------------------

    def _land(self, ref: Any) -> tuple[str, NodeType, TrialStatus] | None:
        """Journal a finished trial; (sha, node type, status) when it is final, None when
        sent again."""
        flight = self._flights.pop(ref)
        commit = flight.commit
        out = landed(ref, commit)  # raises a worker's error; an unsendable one failed it
        if isinstance(out, Lost):  # the worker or its node died
            self.lost_trials += 1
            flight.lost += 1
            log.warning(
                "worker lost mid-trial; sending it again",
                commit=commit.short,
                error=out.error[:200],
            )
            if flight.lost <= MAX_LOST:
                self._submit(commit, flight.kind, flight.node_type, flight)
                return None
            out = {"status": TrialStatus.FAILED.value, "reason": "its worker died"}
            out |= {"build_failed": False}
        out = {"fingerprint": self._fingerprints[flight.node_type], **out}
        key = self.env_key(commit)
        if out["build_failed"]:
            path = self._logs.path(commit.sha, "build")
            path.write_bytes(out.get("build_log", b""))
            self.journal.record_build(commit.sha, key, False, str(path))
            return commit.sha, flight.node_type, TrialStatus.SKIP
        status = TrialStatus(out["status"])
        if status is TrialStatus.FAILED and flight.attempt == 1:
            flight.attempt, flight.first_reason = 2, out.get("reason", "")
            log.info("trial failed, retrying once", commit=commit.short, reason=flight.first_reason)
            self._submit(commit, flight.kind, flight.node_type, flight)
            return None
        if status is TrialStatus.FAILED:  # failed twice: journaled with the second's reason
            status = TrialStatus.SKIP
        bench_key = self._key(out.get("fingerprint") or {})
        keys = (self.run_id, key, bench_key)
        row = self._logs.row(
            {**out, "status": status.value}, sha=commit.sha, keys=keys, attempts=flight.attempt
        )
        self.journal.add_trial(row)
        if bench_key != self._keys[flight.node_type]:  # other hardware: kept, not compared
            self.foreign_trials += 1
            if self.foreign_trials > MAX_FOREIGN:
                raise BisectorError(
                    "trials keep landing on nodes of different hardware",
                    hint="set execution.ray.node_type to a custom resource of one kind of node",
                )
            return None
        return commit.sha, flight.node_type, status


def open_ray_measurer(workers: int) -> Any:
    """The pipeline's `OpenMeasurer` for the ray executor with `workers` in flight."""

    def open_measurer(**kwargs: Any) -> RayMeasurer:
        return RayMeasurer(workers=workers, **kwargs)

    return open_measurer
