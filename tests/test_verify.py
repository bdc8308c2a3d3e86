"""The lean rule (core/sequential.LEAN) and the verification on fresh trials (core/verify.py), over fake probes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from bisector.core import hunt as hunt_module
from bisector.core import judge, sampling, sequential, verify
from bisector.core.hunt import HUNT_RULE, hunt
from bisector.core.sampling import LEAN_ENDPOINT_PROCESSES, Sampler
from bisector.core.types import Status, TrialBudget, Verdict
from bisector.ports import PhaseStarted, ProgressEvent, TrialStarted, VerdictReached, Warned
from tests.test_hunt import BUDGET, COMMITS, METRIC, RULE, FakeProbe, steps_at

# Endpoints 4 a side, 20 ms and 26 ms, about 1% apart between processes.
GOOD = [[v] for v in (19.8, 20.0, 20.2, 20.1)]
BAD = [[v] for v in (25.7, 26.0, 26.2, 25.9)]


def test_lean_rule_decides_a_clear_candidate_on_one_process() -> None:
    """One process on an endpoint, many spreads from the other, decides; halfway does not."""
    assert sequential.decide([[26.05]], GOOD, BAD, RULE, BUDGET, sequential.LEAN) is Verdict.BAD
    assert sequential.decide([[20.05]], GOOD, BAD, RULE, BUDGET, sequential.LEAN) is Verdict.GOOD
    halfway = [[23.0], [23.1], [22.9]]
    assert sequential.decide(halfway, GOOD, BAD, RULE, BUDGET, sequential.LEAN) is Verdict.UNCLEAR
    # escalated: never on one process
    assert (
        sequential.decide([[26.05]], GOOD, BAD, RULE, BUDGET, sequential.ESCALATED)
        is Verdict.UNCLEAR
    )
    assert not sequential.needs_more(Verdict.BAD, 1, BUDGET, sequential.LEAN)
    assert sequential.needs_more(Verdict.BAD, 1, BUDGET, sequential.ESCALATED)


def test_one_process_decides_in_the_named_endpoints_third() -> None:
    """Positions run from the good end's median (20.05) to the bad end's (25.95). One
    process a quarter of the way from an end decides (under the old fifth it took a
    second), one 40% of the way from bad does not."""
    quarter_from_bad = 25.95 - 0.25 * (25.95 - 20.05)
    assert sequential.LEAN.single_fraction == judge.GUARD_FRACTION == 1 / 3
    lean = sequential.LEAN
    fifth = dataclasses.replace(lean, single_fraction=0.2)
    one = [[quarter_from_bad]]
    assert sequential.decide(one, GOOD, BAD, RULE, BUDGET, lean) is Verdict.BAD
    assert sequential.decide(one, GOOD, BAD, RULE, BUDGET, fifth) is Verdict.UNCLEAR
    near_good = [[20.05 + 0.25 * (25.95 - 20.05)]]
    assert sequential.decide(near_good, GOOD, BAD, RULE, BUDGET, lean) is Verdict.GOOD
    forty = [[25.95 - 0.4 * (25.95 - 20.05)]]
    assert sequential.decide(forty, GOOD, BAD, RULE, BUDGET, lean) is Verdict.UNCLEAR


def test_lean_rule_never_calls_an_outlier_beyond_bad_bad() -> None:
    """A process far beyond bad (a CPU hog) is not like bad: the position guard and the
    contaminated likelihood keep it unclear."""
    assert sequential.decide([[40.0]], GOOD, BAD, RULE, BUDGET, sequential.LEAN) is Verdict.UNCLEAR


def test_sampler_stops_a_clear_candidate_after_one_trial() -> None:
    """The lean sampling loop takes one trial of a clear candidate, three of each endpoint
    (a promising difference: 3 vs 3 completely apart by the threshold)."""
    probe = FakeProbe(steps_at((13, 1.3)))
    sampler = Sampler(probe, METRIC, RULE, BUDGET, candidate_rule="lean")
    reproduction = sampler.settle_endpoints(COMMITS[0], COMMITS[-1])
    assert len(probe.trials(COMMITS[0])) == len(probe.trials(COMMITS[-1])) == 3
    assert LEAN_ENDPOINT_PROCESSES == 3
    assert sampler.promising(reproduction) and not reproduction.significant
    for index, verdict in ((5, Verdict.GOOD), (17, Verdict.BAD)):
        decision = sampler.decide(COMMITS[index], COMMITS[0], COMMITS[-1], "fine")
        assert decision.verdict is verdict and decision.trials == 1


def test_lean_hunt_is_the_default_and_verifies_on_fresh_trials() -> None:
    """A clear step: found and verified on fewer executions than the pinpoint rule, its
    verification on 4 fresh processes a side (none of the search's), wholly apart."""
    assert HUNT_RULE == "lean"
    lean_probe, old_probe = FakeProbe(steps_at((13, 1.3))), FakeProbe(steps_at((13, 1.3)))
    lean = hunt(COMMITS, [], lean_probe, METRIC, RULE, BUDGET)
    old = hunt(COMMITS, [], old_probe, METRIC, RULE, BUDGET, candidate_rule="pinpoint")
    assert lean.status is old.status is Status.FOUND
    assert [f.index for f in lean.culprits] == [13]
    culprit = lean.culprits[0]
    assert culprit.verified and culprit.trials == BUDGET.min == 4  # never below repeats.min
    assert len(lean_probe.trials(COMMITS[13])) > 4  # the search measured it too
    assert lean_probe.executions < 0.75 * old_probe.executions


def test_earlier_trials_never_carry_a_verification() -> None:
    """The culprit's earlier trials were slow (a hog then) but fresh ones match its parent:
    only fresh trials are compared, so it is not verified (exit 4, never exit 0)."""
    probe = FakeProbe(steps_at((13, 1.0)))
    parent, culprit = COMMITS[12], COMMITS[13]
    for _ in range(4):  # slow trials of the culprit, taken before verification
        probe.level = steps_at((13, 1.3))
        probe.take(culprit)
    probe.level = steps_at((13, 1.0))
    found = verify.verify(
        probe, METRIC, RULE, BUDGET, 13, (parent, culprit), _reproduction(), probe.take
    )
    assert not found.verified and found.trials >= 5
    assert len(probe.trials(culprit)) == 4 + found.trials


def test_a_wrong_direction_candidate_is_never_verified() -> None:
    """Fresh trials show the candidate faster than its parent: unverified, exit 4."""
    probe = FakeProbe(lambda i, _n: 18.0 if i == 13 else 20.0)
    found = verify.verify(
        probe,
        METRIC,
        RULE,
        BUDGET,
        13,
        (COMMITS[12], COMMITS[13]),
        _reproduction(),
        probe.take,
    )
    assert not found.verified and found.effect is not None and found.effect < 0
    assert "other direction" in found.note


def _slow_first_two(i: int, n: int) -> float:
    base = 26.0 if i >= 13 else 20.0
    return 26.0 if i == 10 and n < 2 else base  # commit 10's first processes: slow


def test_a_verification_whose_fresh_trials_move_the_posterior_away_is_given_up() -> None:
    """A good commit whose first two processes are slow (a hog) misleads the search, which
    hands it to the verification at half the posterior; its fresh trials are like good,
    the posterior leaves it (`verify.ABANDON_BELOW`), the verification is given up and the
    part searched on at the same rule, every trial counting: the true step is verified,
    without the escalated search."""
    events: list[ProgressEvent] = []
    result = hunt(COMMITS, [], FakeProbe(_slow_first_two), METRIC, RULE, BUDGET, events.append)
    assert result.status is Status.FOUND and [f.index for f in result.culprits] == [13]
    assert not any(isinstance(e, Warned) for e in events)
    assert sum(e == PhaseStarted("verify") for e in events) == 2
    verified = [e for e in events if isinstance(e, TrialStarted) and e.phase == "verify"]
    assert {e.commit for e in verified} >= {COMMITS[10].short, COMMITS[12].short}


def test_failed_verification_re_bisects_with_the_escalated_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without searching on after a given-up verification (`hunt.SEARCH_ROUNDS` 0), the
    culprit the hog misled the search to fails verification; its part is searched on to
    the escalated posterior (`posterior.ESCALATED_EPSILON`, the fresh trials counting too),
    and the true step is found and verified."""
    monkeypatch.setattr(hunt_module, "SEARCH_ROUNDS", 0)
    events: list[ProgressEvent] = []
    result = hunt(COMMITS, [], FakeProbe(_slow_first_two), METRIC, RULE, BUDGET, events.append)
    assert result.status is Status.FOUND and [f.index for f in result.culprits] == [13]
    assert any(isinstance(e, Warned) and "bisecting its part again" in e.message for e in events)
    assert sum(e == PhaseStarted("verify") for e in events) == 2


def test_clear_case_uses_few_candidate_trials() -> None:
    """A +30% step over 21 commits: at most two trials a candidate on average."""
    events: list[ProgressEvent] = []
    hunt(COMMITS, [], FakeProbe(steps_at((13, 1.3))), METRIC, RULE, BUDGET, events.append)
    fine = [e for e in events if isinstance(e, TrialStarted) and e.phase == "fine"]
    probed = [e for e in events if isinstance(e, VerdictReached) and e.phase == "fine"]
    assert probed and len(fine) <= 2 * len(probed)


def _reproduction() -> judge.Comparison:
    return judge.compare(GOOD, BAD, RULE)


def test_lean_hunt_without_a_regression_is_not_reproduced() -> None:
    """No step at all, or the bad endpoint faster: exit 3 (not reproduced), no search."""
    for level in (steps_at(), steps_at((13, 0.8))):
        events: list[ProgressEvent] = []
        result = hunt(COMMITS, [], FakeProbe(level), METRIC, RULE, BUDGET, events.append)
        assert result.status is Status.NOT_REPRODUCED and result.culprits == ()
        assert not any(isinstance(e, VerdictReached) and e.phase == "fine" for e in events)


def test_a_promising_start_without_a_verified_culprit_settles_the_endpoints() -> None:
    """The endpoints' first 3 processes look apart by chance, nothing verifies: the hunt
    measures the endpoints on and says not reproduced (exit 3), never found."""

    def level(i: int, n: int) -> float:
        return 21.5 if i == N_LAST and n < 3 else 20.0  # only bad's first 3 are slow

    result = hunt(COMMITS, [], FakeProbe(level), METRIC, RULE, BUDGET)
    assert result.status is Status.NOT_REPRODUCED and result.culprits == ()
    assert not result.reproduction.reproduced
    assert any(step.phase == "fine" for step in result.steps)  # it did search


N_LAST = len(COMMITS) - 1


def _verify_with_ends(
    probe: FakeProbe,
    index: int,
    *,
    ends: bool = True,
    budget: TrialBudget = BUDGET,
    end_trials: int = 4,
    standing: Callable[[], float] | None = None,
) -> verify.Found:
    """Verify commit `index` against its parent after `end_trials` of each endpoint."""
    for _ in range(end_trials):
        probe.take(COMMITS[0])
        probe.take(COMMITS[N_LAST])
    return verify.verify(
        probe,
        METRIC,
        RULE,
        budget,
        index,
        (COMMITS[index - 1], COMMITS[index]),
        _reproduction(),
        probe.take,
        (COMMITS[0], COMMITS[N_LAST]) if ends else None,
        standing=standing,
    )


def test_a_verification_reads_the_posterior_after_each_fresh_pair() -> None:
    """With the posterior search's `standing`: a true +30% step verifies as before while its
    position holds 90%; while it holds less (the search places the step elsewhere) the
    same fresh trials do not verify it, up to `repeats.max`; below a fifth the
    verification is given up at once (`abandoned`, for the hunt to search on)."""
    reads: list[int] = []

    def holds(mass: float) -> Callable[[], float]:
        return lambda: reads.append(1) or mass

    step = steps_at((13, 1.3))
    sure = _verify_with_ends(FakeProbe(step), 13, standing=holds(0.95))
    assert sure.verified and sure.trials == 4 and not sure.abandoned and reads
    unsure = _verify_with_ends(FakeProbe(step), 13, standing=holds(0.6))
    assert not unsure.verified and not unsure.abandoned and unsure.trials == BUDGET.max
    assert "does not place the step" in unsure.note
    gone = _verify_with_ends(FakeProbe(step), 13, standing=holds(0.1))
    assert gone.abandoned and not gone.verified and gone.trials == 2 and gone.split_at is None
    assert "search went on" in gone.note


def test_a_pair_between_the_ends_is_given_up_where_the_part_splits() -> None:
    """Two steps (+15% at 10, +15% more at 16): parent and candidate 12 and 13 both sit
    halfway. Their fresh trials lie significantly between the part's ends (the judge's
    alpha, `judge.assess`), so with the
    posterior search the verification is given up with `split_at` (the candidate, 13),
    and the hunt splits the part there; without it (other rules) it is not verified."""
    level = steps_at((10, 1.15), (16, 1.15))
    gone = _verify_with_ends(FakeProbe(level), 13, standing=lambda: 0.5, end_trials=6)
    assert gone.abandoned and not gone.verified and gone.split_at == 13
    assert gone.trials == 4  # 4 against the ends' 6: p = 2 / C(10, 4) < 0.01
    assert not _verify_with_ends(FakeProbe(level), 13, end_trials=6).verified


def test_a_same_level_pair_apart_by_chance_is_not_verified() -> None:
    """Two good-level commits whose fresh trials land apart by the threshold (the parent
    3% low, the candidate 3.5% high) pass the test between them, but the candidate is not
    worse than the good end by the threshold: unverified (exit 4), after every trial."""

    def level(i: int, _n: int) -> float:
        return {12: 19.4, 13: 20.7}.get(i, 26.0 if i >= 14 else 20.0)

    alone = _verify_with_ends(FakeProbe(level), 13, ends=False)
    assert alone.verified  # the test between the two alone is fooled
    found = _verify_with_ends(FakeProbe(level), 13)
    assert not found.verified and found.trials == BUDGET.max
    assert found.evidence is not None and found.evidence.reproduced
    assert "good and bad ends" in found.note


def test_a_same_level_pair_at_the_bad_end_is_not_verified() -> None:
    """The mirror: two bad-level commits apart by chance; the parent is not better than
    the bad end by the threshold, so the candidate is not verified."""

    def level(i: int, _n: int) -> float:
        return {15: 25.3, 16: 27.0}.get(i, 26.0 if i >= 14 else 20.0)

    assert _verify_with_ends(FakeProbe(level), 16, ends=False).verified
    assert not _verify_with_ends(FakeProbe(level), 16).verified


def test_a_real_step_verifies_like_the_ends() -> None:
    """A true step verifies with the ends' test: at 4 fresh processes a side when wholly
    apart by the threshold (+30%; never below `repeats.min`), at the rank test's 5 when the
    step is near it (+5.5%)."""
    wide = _verify_with_ends(FakeProbe(steps_at((13, 1.3))), 13)
    assert wide.verified and wide.trials == 4
    at_min = _verify_with_ends(FakeProbe(steps_at((13, 1.3))), 13, budget=TrialBudget(6, 12))
    assert at_min.verified and at_min.trials == 6
    near = _verify_with_ends(FakeProbe(steps_at((13, 1.055))), 13)
    assert near.verified and near.trials == 5


def test_a_wide_step_verifies_on_three_fresh_processes_when_repeats_min_allows() -> None:
    """With `repeats.min: 3` a +30% step wholly apart from its parent, and wholly apart from
    the ends' 4 processes (p = 0.057 < `EARLY_ENDS_ALPHA`), verifies on 3 a side; against
    ends of 3 (p = 0.1 at best; 4 against 3 is 0.057 > `ENDS_ALPHA`) the rank test's 5."""
    three = TrialBudget(3, 12)
    assert verify.EARLY_PROCESSES == 3
    wide = _verify_with_ends(FakeProbe(steps_at((13, 1.3))), 13, budget=three)
    assert wide.verified and wide.trials == 3 and wide.p_value is not None
    thin = _verify_with_ends(FakeProbe(steps_at((13, 1.3))), 13, budget=three, end_trials=3)
    assert thin.verified and thin.trials == 5


def test_wholly_apart_needs_the_threshold_between_the_closest_processes() -> None:
    """4 vs 4 completely apart is not enough: the nearest two must differ by the threshold
    (5% of 20 ms), in the regressed direction."""
    parent = [[v] for v in (19.9, 20.0, 20.1, 20.2)]
    assert verify.wholly_apart(parent, [[v] for v in (21.3, 21.5, 22.0, 23.0)], RULE, 20.0)
    assert not verify.wholly_apart(parent, [[v] for v in (20.9, 21.5, 22.0, 23.0)], RULE, 20.0)
    assert not verify.wholly_apart([[v] for v in (21.3, 21.5, 22.0, 23.0)], parent, RULE, 20.0)


def test_an_unclear_candidate_has_the_ends_measured_as_often_as_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The good end's 3 first processes came out 17.5% low: a good-level candidate looks
    a third of the way to bad and stays unclear; topping the ends up (to 6 at most, in the
    `interleave` phase; `ENDS_TOP_UP_AFTER`, 3 by default) places it GOOD within 6 processes
    (not 12)."""

    def level(i: int, n: int) -> float:
        if i == 0:
            return 16.5 if n < 3 else 20.0
        return 26.0 if i >= 13 else 20.0

    def decide(top_up: int) -> tuple[Verdict, FakeProbe, list[ProgressEvent]]:
        monkeypatch.setattr(sampling, "ENDS_TOP_UP_AFTER", top_up)
        probe, events = FakeProbe(level), []
        sampler = Sampler(
            probe, METRIC, RULE, TrialBudget(3, 12), events.append, candidate_rule="lean"
        )
        for _ in range(3):
            probe.take(COMMITS[0])
            probe.take(COMMITS[N_LAST])
        return (
            sampler.decide(COMMITS[5], COMMITS[0], COMMITS[N_LAST], "fine").verdict,
            probe,
            events,
        )

    assert sampling.ENDS_TOP_UP_AFTER == 3
    without, probe, _ = decide(0)
    assert without is Verdict.UNCLEAR and len(probe.trials(COMMITS[5])) == 12
    verdict, probe, events = decide(3)
    assert verdict is Verdict.GOOD and len(probe.trials(COMMITS[5])) <= 6
    assert 3 < len(probe.trials(COMMITS[0])) <= 6
    assert any(isinstance(e, TrialStarted) and e.phase == "interleave" for e in events)


def test_like_ends_refuses_a_pair_halfway_between_the_ends() -> None:
    """Two commits between two steps (23 and 24.2 ms between ends of 20 and 26 ms) are
    each past the end they should not look like; the culprit is also significantly
    better than the bad end, by the threshold: halfway, so not like the ends, while a
    true step's pair (20 and 26) is."""
    rule = RULE
    parent = [[v] for v in (22.9, 23.0, 23.1, 23.05, 22.95)]
    culprit = [[v] for v in (24.1, 24.2, 24.3, 24.25, 24.15)]
    assert not verify.like_ends(parent, culprit, GOOD, BAD, rule)
    step_parent = [[v] for v in (19.9, 20.0, 20.1, 20.05, 19.95)]
    step_culprit = [[v] for v in (25.9, 26.0, 26.1, 26.05, 25.95)]
    assert verify.like_ends(step_parent, step_culprit, GOOD, BAD, rule)


def test_a_pair_halfway_is_measured_on_though_the_posterior_left_it() -> None:
    """The one-step posterior cannot place commits between two steps, so its mass there
    may fall below a fifth; a pair halfway between the ends is not given up for that
    (`between.halfway`) but measured on until it lies significantly between them."""
    level = steps_at((10, 1.15), (16, 1.15))
    found = _verify_with_ends(FakeProbe(level), 13, standing=lambda: 0.05, end_trials=6)
    assert found.abandoned and found.split_at == 13 and found.trials == 4
    far = _verify_with_ends(FakeProbe(steps_at((13, 1.3))), 13, standing=lambda: 0.05)
    assert far.abandoned and far.split_at is None and far.trials == 2


def test_a_parent_at_zero_has_no_relative_effect() -> None:
    """0 -> 5: the shift is 5, its relative size undefined: `effect` is None, not +0%."""
    parent, culprit = [[0.0, 0.0, 0.0]] * 5, [[5.0, 5.1, 4.9]] * 5
    comp = judge.compare(parent, culprit, RULE, alpha=judge.VERIFY_ALPHA)
    out = verify.found(7, comp, 5, comp)
    assert out.verified and out.effect is None and out.effect_abs == comp.effect > 4.9
