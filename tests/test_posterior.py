"""The probabilistic bisection: the posterior's arithmetic (core.posterior) checked against
a brute-force product of likelihoods, and the search of a part (core.partsearch) through
the pure hunt over a fake probe."""

from __future__ import annotations

import math
import random

import pytest

from bisector.core import hunt as hunt_module
from bisector.core import posterior
from bisector.core.hunt import hunt
from bisector.core.types import Status, Verdict
from bisector.ports import (
    PhaseStarted,
    ProbeStarted,
    ProgressEvent,
    RangeNarrowed,
    TrialStarted,
    Warned,
)
from tests.test_hunt import BUDGET, COMMITS, METRIC, RULE, FakeProbe, steps_at


def brute_posterior(n: int, like_good: dict[int, float], like_bad: dict[int, float]) -> list[float]:
    """P(first bad = k) as the normalised product over the interior commits of each one's
    likelihood of being good (j < k) or bad (j >= k): no suffix sums, no logs."""
    weights = []
    for k in range(1, n):
        w = 1.0
        for j in range(1, n - 1):
            w *= like_bad.get(j, 1.0) if j >= k else like_good.get(j, 1.0)
        weights.append(w)
    total = sum(weights)
    return [w / total for w in weights]


def test_the_posterior_is_the_product_of_the_likelihoods() -> None:
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(2, 12)
        measured = [j for j in range(1, n - 1) if rng.random() < 0.6]
        good = {j: rng.uniform(0.01, 2.0) for j in measured}
        bad = {j: rng.uniform(0.01, 2.0) for j in measured}
        llr = {j: math.log(bad[j] / good[j]) for j in measured}
        assert posterior.posterior(n, llr) == pytest.approx(brute_posterior(n, good, bad))


def test_nothing_measured_is_uniform_and_the_median_is_probed() -> None:
    """9 positions, no evidence: each 1/9; Horstein's rule probes the commit whose "bad?"
    splits them 5/4 or 4/5 (commit 4 or 5 of 1..8; the first of the two)."""
    assert posterior.posterior(10, {}) == pytest.approx([1 / 9] * 9)
    assert posterior.next_probe(10, {}, set()) == 4
    assert posterior.settled(10, {}, set()) is None


def test_evidence_moves_the_probe_and_settles_on_one_position() -> None:
    """Commit 4 bad (ratio 55) sends the next probe below it; commits 2 good and 3 bad as
    clearly settle the first bad commit at 3 (1 - epsilon of the posterior)."""
    bad4 = {4: 4.0}
    assert posterior.next_probe(10, bad4, set()) < 4
    clear = {2: -4.0, 3: 4.0, 4: 4.0}
    block = posterior.settled(10, clear, set())
    assert block is not None and (block.first, block.last) == (3, 3)
    assert block.mass >= 1 - posterior.EPSILON
    assert posterior.next_probe(10, clear, set()) is None


def test_a_commit_that_cannot_be_placed_merges_its_two_positions() -> None:
    """Commit 3 blocked: positions 3 and 4 are one block with their summed mass; with 2
    good and 4 bad the search settles on that block (an honest range 2..4), and never
    probes 3."""
    llr = {2: -6.0, 4: 6.0}
    blocks = posterior.blocks(10, llr, {3})
    merged = [b for b in blocks if b.first == 3]
    assert merged and merged[0].last == 4
    probs = posterior.posterior(10, llr)
    assert merged[0].mass == pytest.approx(probs[2] + probs[3])
    block = posterior.settled(10, llr, {3})
    assert block is not None and (block.first, block.last) == (3, 4)
    assert posterior.next_probe(10, {2: -1.0, 4: 1.0}, {3}) != 3


def test_the_steps_left_are_the_bits_left_at_the_rate_the_search_learned_them() -> None:
    """Nine equal positions handed over at half leave log2(9) - 1 bits, a settled posterior
    none. Before its own processes a search is taken to learn a bit a process; one that did
    goes on at that rate, one whose processes taught nothing (a commit measured again and
    again) is estimated longer at each step (`k + left - 1` grows, never overrun), never
    past what its cap leaves nor under the step it is taking."""
    assert posterior.bits_left(10, {}, set(), 0.5) == pytest.approx(math.log2(9) - 1)
    assert posterior.bits_left(10, {2: -8.0, 3: 8.0}, set(), 0.5) == 0.0
    assert posterior.bits_left(10, {}, set(), 0.1) > posterior.bits_left(10, {}, set(), 0.5)
    learning = posterior.StepsLeft()
    assert [learning(bits, taken, 99) for taken, bits in enumerate([4.2, 3.2, 2.2])] == [5, 4, 3]
    stuck = posterior.StepsLeft()
    ends = [k + stuck(4.2, k - 1, 99) - 1 for k in range(1, 9)]
    assert ends == sorted(set(ends)) and ends[0] == 5 and ends[-1] > 8, ends
    assert stuck(4.2, 30, 6) == 6
    assert posterior.StepsLeft()(0.0, 0, 9) == 1


def test_one_misleading_process_is_outweighed_without_an_escalated_search() -> None:
    """Commit 10's first process is slow (a hog): the posterior moves towards it, later
    processes (the search's, or a verification's fresh ones, which then gives up) move it
    back, and the true step (13) is verified without the escalated search."""

    def level(i: int, n: int) -> float:
        base = 26.0 if i >= 13 else 20.0
        return 26.0 if i == 10 and n == 0 else base

    events: list[ProgressEvent] = []
    result = hunt(COMMITS, [], FakeProbe(level), METRIC, RULE, BUDGET, events.append)
    assert result.status is Status.FOUND and [f.index for f in result.culprits] == [13]
    assert sum(e == PhaseStarted("verify") for e in events) <= 2
    assert not any(isinstance(e, Warned) for e in events)
    # commit 10 was measured again after its misleading first process
    assert sum(isinstance(e, ProbeStarted) and e.commit == COMMITS[10].short for e in events) >= 2


def test_a_clear_step_costs_about_one_process_a_halving() -> None:
    """+30% over 21 commits (19 candidates, ~4.2 halvings): the search takes one process a
    probe and stops when the posterior is settled; every measured commit is placed on the
    right side of the culprit in the steps."""
    probe = FakeProbe(steps_at((13, 1.3)))
    events: list[ProgressEvent] = []
    result = hunt(COMMITS, [], probe, METRIC, RULE, BUDGET, events.append)
    assert result.status is Status.FOUND and [f.index for f in result.culprits] == [13]
    probes = sum(isinstance(e, ProbeStarted) for e in events)
    assert 4 <= probes <= 8
    for step in result.steps:
        if step.phase == "fine":
            want = Verdict.BAD if step.index >= 13 else Verdict.GOOD
            assert step.verdict is want


def test_without_the_posterior_the_lean_hunt_decides_candidate_by_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`POSTERIOR_SEARCH` off (and with K workers, always): the candidate-by-candidate
    search finds and verifies the same step."""
    monkeypatch.setattr(hunt_module, "POSTERIOR_SEARCH", False)
    result = hunt(COMMITS, [], FakeProbe(steps_at((13, 1.3))), METRIC, RULE, BUDGET)
    assert result.status is Status.FOUND and [f.index for f in result.culprits] == [13]


def test_release_tags_are_probed_first_by_the_same_posterior() -> None:
    """Tags at 5, 10 and 15: the search probes only them until the posterior holds 90%
    between two adjacent ones (10 and 15: "release tags", 5 positions), then the commits
    (`fine`); both passes show in the progress and the steps."""
    events: list[ProgressEvent] = []
    probe = FakeProbe(steps_at((13, 1.3)))
    result = hunt(COMMITS, [5, 10, 15], probe, METRIC, RULE, BUDGET, events.append)
    assert result.status is Status.FOUND and [f.index for f in result.culprits] == [13]
    probed = [e for e in events if isinstance(e, ProbeStarted)]
    coarse = [e.commit for e in probed if e.phase == "coarse"]
    assert coarse and set(coarse) <= {COMMITS[t].short for t in (5, 10, 15)}
    assert probed[: len(coarse)] == [e for e in probed if e.phase == "coarse"]
    narrowed = [e for e in events if isinstance(e, RangeNarrowed)]
    assert [n.what for n in narrowed] == ["release tags", "commits"]
    assert narrowed[0].n == 5 and narrowed[1].n == 6  # tags 10..15 and the commits between
    phases = {s.index: s.phase for s in result.steps}
    assert {phases[i] for i in (5, 10, 15) if i in phases} == {"coarse"}


def test_a_resumed_hunt_starts_where_the_journaled_trials_leave_the_posterior() -> None:
    """A second hunt over the same probe (a killed run resumed: its trials come back from
    the journal) takes no search process at all: the posterior is settled by the trials
    already there; only the verification takes fresh ones."""
    probe = FakeProbe(steps_at((13, 1.3)))
    first = hunt(COMMITS, [], probe, METRIC, RULE, BUDGET)
    assert first.status is Status.FOUND
    events: list[ProgressEvent] = []
    again = hunt(COMMITS, [], probe, METRIC, RULE, BUDGET, events.append)
    assert again.status is Status.FOUND and [f.index for f in again.culprits] == [13]
    phases = [e.phase for e in events if isinstance(e, TrialStarted)]
    assert phases and set(phases) == {"verify"}
