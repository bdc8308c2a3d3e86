"""A ray run's kinds of machine in its document (docs/ray.md#mixed-hardware-in-one-run):
which node type each verdict was reached on, and each type's trials.

A run over several node types journals its trials under one benchmark key a type (the
key carries the fingerprint), so the reports must read every key of the run, not only
`bench_key` (the first type's), and tell the types apart. Local runs have no node types:
their documents are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from bisector.core.types import Commit
from bisector.document import NodeTypeTrials
from bisector.engine.measure import Measurer
from bisector.executors.fingerprint import PLACEMENT_FIELDS
from bisector.store.journal import Journal


class VerdictTypes:
    """The node type each verdict of a run over several types was judged on: the type of
    the trials the judge read for it at that moment (the candidate's own; the first type
    for the endpoints' reproduction). Nothing for a run on one kind of machine."""

    def __init__(self, measurer: Measurer) -> None:
        self._measurer = measurer
        self._types = {key: t for t, (key, _fp) in measurer.hardware.items()}
        self._seen: dict[tuple[str, str], str | None] = {}

    def note(self, phase: str, commit: Commit) -> None:
        """Called as the verdict on `commit` is reached (before any other comparison)."""
        if len(self._types) < 2:
            return
        rows = self._measurer.trials(commit)
        if rows:
            self._seen[(phase, commit.sha)] = self._types.get(rows[-1].bench_key)

    def of(self, phase: str, sha: str) -> str | None:
        return self._seen.get((phase, sha))


def run_keys(
    journal: Journal, run_id: str, measurer: Measurer, read: Iterable[tuple[str, str]]
) -> tuple[dict[str, int], tuple[NodeTypeTrials, ...] | None]:
    """Trials of earlier runs this run read (run id -> count) under any of its benchmark
    keys, in the (commit, environment) pairs it `read`; and its node types with their own
    and reused trials (None for the local executor)."""
    pairs = list(read)
    keys = [key for key, _fp in measurer.hardware.values()] or [measurer.bench_key]
    reused = {key: journal.reused_trials(run_id, key, pairs) for key in keys}
    runs: dict[str, int] = {}
    for counts in reused.values():
        for run, n in counts.items():
            runs[run] = runs.get(run, 0) + n
    if not measurer.hardware:
        return runs, None
    return runs, tuple(
        NodeTypeTrials(
            node_type,
            key,
            {k: v for k, v in fingerprint.items() if k not in PLACEMENT_FIELDS},
            journal.trial_count(run_id, key),
            sum(reused[key].values()),
        )
        for node_type, (key, fingerprint) in measurer.hardware.items()
    )
