"""The adapter behind `isolate.StateProbe`: states as scratch checkouts, measured for real.

A state is materialized as a synthetic checkout: the base commit's worktree copied to
`<store>/isolate/<hash>/` with its dependency and config files rewritten
(`changes.render_files`), measured through the run's `Measurer` under the id
`<sha>+<deps|config|mixed>:<hash>`. The id hashes the base commit and the files, so the
journal finds a state's trials again on resume and identical states share them. A state
equal to a real commit (the parent with no changes, the culprit with all) is that commit.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bisector.config import Config
from bisector.core import judge
from bisector.core.sampling import EndpointUnmeasurable, Sampler
from bisector.core.types import Commit, MetricRule, Verdict
from bisector.engine.measure import Measurer
from bisector.engine.overlay import write_file
from bisector.engine.trialreason import trials_failed
from bisector.isolate.changes import Change, Files, PartialStateError, render_files
from bisector.isolate.plan import State
from bisector.log import get_logger
from bisector.ports import Check, Expect, ProbeStarted, Progress, VerdictReached
from bisector.store.journal import Journal

log = get_logger("bisector.isolate")
_MARKER = ".bisector-state"


class SideUnmeasurable(PartialStateError):
    """A reference (the good or the bad end) could not be measured: a failed build, or
    trials that failed twice. `why` says which, `logs` where to look; `shas`: both
    references, whose failures a retry forgets (`Journal.fail_run`)."""

    def __init__(self, side: str, why: str, logs: Path, shas: tuple[str, str]) -> None:
        super().__init__(f"the {side} side could not be measured: {why}")
        self.side, self.why, self.logs, self.shas = side, why, logs, shas


@dataclass(frozen=True)
class Side:
    """One end: the commit whose code a state copies, and its dependency/config files."""

    code: Commit
    files: Files
    real: Commit | None  # the commit this end is, when it is one (None: synthetic)


class MeasuredStates:
    """`StateProbe` over a Measurer; references are the good and bad ends' samples."""

    def __init__(
        self,
        *,
        cfg: Config,
        metric_name: str,
        metric: MetricRule,
        measurer: Measurer,
        journal: Journal,
        run_id: str,
        good: Side,
        bad: Side,
        changes: Sequence[Change],
        progress: Progress,
    ) -> None:
        self.cfg, self.metric_name, self.metric = cfg, metric_name, metric
        self.measurer, self.journal, self.run_id = measurer, journal, run_id
        self.sides = {"parent": good, "culprit": bad}
        # Standalone isolation runs HEAD's code on both sides: its states are named by
        # side, not "culprit code" / "parent code" (`State.label`).
        self.same_code = good.code.sha == bad.code.sha
        self.changes = list(changes)
        self.progress = progress
        self.sampler = Sampler(
            measurer, metric_name, metric, cfg.benchmark.repeats.budget(), progress
        )
        self.root = measurer.store / "isolate"
        self._tag = _tag(changes)
        self._fresh: dict[str, list[list[float]]] = {}
        self.good_ref = self.commit(State("parent", frozenset()))
        self.bad_ref = self.commit(State("culprit", frozenset(changes)))

    # -- states as commits ----------------------------------------------------------

    def label(self, state: State) -> str:
        return state.label(self.changes, self.same_code)

    def commit(self, state: State) -> Commit | None:
        """The (possibly synthetic) commit of `state`; None when it cannot be written."""
        side = self.sides[state.base]
        everything = len(state.applied) == len(self.changes)
        if (
            side.real is not None
            and not state.pins
            and (
                (state.base == "parent" and not state.applied)
                or (state.base == "culprit" and everything)
            )
        ):
            return side.real
        good, bad = self.sides["parent"].files, self.sides["culprit"].files
        try:
            files = render_files(good, bad, self.changes, state.applied, dict(state.pins))
        except PartialStateError:
            return None
        digest = hashlib.sha256(
            json.dumps(
                [
                    side.code.sha,
                    sorted(
                        (p, None if d is None else hashlib.sha256(d).hexdigest())
                        for p, d in files.items()
                    ),
                ]
            ).encode()
        ).hexdigest()[:16]
        sid = f"{side.code.sha}+{self._tag}:{digest}"
        commit = Commit(sid, self.label(state), side.code.author, side.code.date)
        checkout = self.root / digest
        if not (checkout / _MARKER).is_file() or (checkout / _MARKER).read_text() != sid:
            shutil.rmtree(checkout, ignore_errors=True)
            source = self.measurer.checkouts.get(side.code)
            self.measurer.restore(side.code)  # not what its last trial left there
            shutil.copytree(source, checkout, ignore=shutil.ignore_patterns(".git", "__pycache__"))
            for rel, data in files.items():
                write_file(checkout / rel, data)
            (checkout / _MARKER).write_text(sid)
        self.measurer.add_synthetic(commit, side.code.sha, checkout, files)
        return commit

    # -- the probe ------------------------------------------------------------------

    def samples(self, commit: Commit) -> list[list[float]]:
        return self.measurer.samples(commit, self.metric_name)

    def ensure_references(self) -> judge.Comparison:
        """Measure both references until their difference is settled (as reproduction)."""
        assert self.good_ref is not None and self.bad_ref is not None
        try:
            return self.sampler.settle_endpoints(self.good_ref, self.bad_ref, "isolate-references")
        except EndpointUnmeasurable as exc:
            if exc.untestable:
                shas = (self.good_ref.sha, self.bad_ref.sha)
                raise SideUnmeasurable(exc.side, *self._why_unmeasurable(exc.commit), shas) from exc
            raise

    def _why_unmeasurable(self, commit: Commit) -> tuple[str, Path]:
        """Its failed build, else its last failed trial's reason; and where the logs are."""
        build_log = self.journal.failed_build(commit.sha, self.measurer.env_key(commit))
        if build_log:
            return "its environment did not build", Path(build_log)
        if build_log is not None:
            return "its environment did not build", self.measurer.store / "logs" / "build"
        why = trials_failed(self.measurer.trials(commit)) or "its trials failed"
        return why, self.measurer.run_dir

    def verdict(self, state: State, phase: str) -> Verdict:
        assert self.good_ref is not None and self.bad_ref is not None
        commit = self.commit(state)
        if commit is None:
            self._step(phase, state, None, Verdict.SKIP)
            return Verdict.SKIP
        self.progress(ProbeStarted(phase, commit.short, commit.subject))
        decision = self.sampler.decide(commit, self.good_ref, self.bad_ref, phase)
        if decision.reason:
            log.warning("state untestable", state=self.label(state), reason=decision.reason)
        self._step(phase, state, commit, decision.verdict, decision.reason)
        return decision.verdict

    def _step(
        self, phase: str, state: State, commit: Commit | None, verdict: Verdict, reason: str = ""
    ) -> None:
        samples = self.samples(commit) if commit is not None else []
        med = sorted(judge.process_medians(samples)) if samples else []
        median = med[len(med) // 2] if med else None
        sid = commit.sha if commit is not None else f"{self.sides[state.base].code.sha}+unbuildable"
        label = self.label(state)
        detail = {"state": label, "reason": reason} if reason else {"state": label}
        self.journal.add_step(self.run_id, phase, sid, verdict.value, len(samples), median, detail)
        self.progress(VerdictReached(phase, sid, label, verdict, len(samples), median))

    def _fresh_samples(self, commit: Commit, n: int) -> list[list[float]]:
        before = len(self.samples(commit))
        for _ in range(n):
            self.measurer.take(commit)
        return self.samples(commit)[before:]

    def verify(self, state: State, expect: Expect) -> Check:
        label = self.label(state)
        commit = self.commit(state)
        ref = self.bad_ref if expect == "recovered" else self.good_ref
        n = max(self.cfg.benchmark.repeats.min, 5)
        if commit is None or ref is None:
            return Check(label, expect, False, None, None, None, 0)
        if ref.sha not in self._fresh:  # fresh reference trials, shared by the checks
            self._fresh[ref.sha] = self._fresh_samples(ref, n)
        self.progress(ProbeStarted("verify", commit.short, label))
        fresh, ref_fresh = self._fresh_samples(commit, n), self._fresh[ref.sha]
        if len(fresh) < 2 or len(ref_fresh) < 2:
            return Check(label, expect, False, None, None, None, len(fresh))
        comp = judge.compare(ref_fresh, fresh, self.metric)
        passed = comp.significant and (comp.improved if expect == "recovered" else comp.regressed)
        return Check(
            label,
            expect,
            passed,
            round(comp.relative_effect, 4),
            comp.effect,
            comp.p_value,
            len(fresh),
        )


def _tag(changes: Sequence[Change]) -> str:
    kinds = {c.kind for c in changes}
    return "deps" if kinds == {"dependency"} else "config" if kinds == {"config"} else "mixed"


_SDIST = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)\.(?:tar\.gz|zip|tar\.bz2)$")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def local_versions(folders: Sequence[Path], name: str) -> list[str]:
    """Versions of `name` among the wheels and sdists in find-links folders."""
    found: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.endswith(".whl"):
                parts = path.name[:-4].split("-")
                if len(parts) >= 5 and _normal(parts[0]) == _normal(name):
                    found.add(parts[1])
            elif (m := _SDIST.match(path.name)) and _normal(m.group("name")) == _normal(name):
                found.add(m.group("version"))
    return sorted(found)
