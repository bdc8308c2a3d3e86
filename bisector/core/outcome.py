"""What a hunt decided (`core.hunt`): its steps and its result. Pure data."""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from bisector.core import judge, noise
from bisector.core.types import Status, Verdict
from bisector.core.verify import Found

__all__ = ["HuntResult", "HuntStep", "Part", "conclude"]


@dataclass(frozen=True)
class HuntStep:
    """One verdict of the hunt, in the order it was decided (`index` into `commits`)."""

    phase: str
    index: int
    verdict: Verdict
    samples: int
    median: float | None
    reason: str = ""


@dataclass(frozen=True)
class HuntResult:
    """What the hunt decided. Indices are into `commits`.

    `culprits` are the verified ones, by index; `suspect` the largest unverified candidate
    (INCONCLUSIVE). `last_good`/`first_bad` bound the part that is not resolved, else the
    suspect, else the largest culprit. `untestable` could not be measured; `unclear` were
    measured but could not be placed.
    """

    status: Status
    reproduction: judge.Comparison
    culprits: tuple[Found, ...]
    suspect: Found | None
    last_good: int
    first_bad: int
    untestable: tuple[int, ...]
    unclear: tuple[int, ...]
    steps: tuple[HuntStep, ...]
    noise: noise.Noise
    # Why the status is what it is, when the fields above do not say it (an INCONCLUSIVE
    # reached at the endpoints: their noise cannot rule a regression out, `core.nullcheck`).
    reason: str = ""

    @property
    def culprit(self) -> Found | None:
        """The largest culprit (the contract's `culprit`), when the status is FOUND."""
        if self.status is not Status.FOUND or not self.culprits:
            return None
        return max(self.culprits, key=lambda f: f.share or 0.0)


@dataclass(frozen=True)
class Part:
    """How one part of the range ended: narrowed to `first_bad`, or an open range."""

    last_good: int
    first_bad: int
    narrowed: bool
    interior: tuple[int, ...]  # probed but not placed (SKIP or UNCLEAR)
    ends: tuple[int, int] = (0, 0)  # the (good, bad) ends this part was bisected between


def conclude(
    reproduction: judge.Comparison,
    founds: Sequence[Found],
    open_parts: Sequence[Part],
    skipped: Set[int],
    steps: tuple[HuntStep, ...],
    measured: noise.Noise,
) -> HuntResult:
    """The hunt's result from its verified parts and its open ones: FOUND only when every
    part ended in a verified culprit; the range is the first open part's, else the
    suspect's, else the largest culprit's."""
    culprits = tuple(sorted((f for f in founds if f.verified), key=lambda f: f.index))
    unverified = [f for f in founds if not f.verified]
    suspect = (
        max(unverified, key=lambda f: f.share if f.share is not None else -1.0)
        if unverified
        else None
    )
    status = Status.FOUND if culprits and not unverified and not open_parts else Status.INCONCLUSIVE
    if open_parts:
        lo, hi = open_parts[0].last_good, open_parts[0].first_bad
    else:
        named = suspect or max(culprits, key=lambda f: f.share or 0.0)
        lo, hi = named.index - 1, named.index
    interior = sorted(i for p in open_parts for i in p.interior)  # by commit, as culprits
    return HuntResult(
        status,
        reproduction,
        culprits,
        suspect,
        lo,
        hi,
        tuple(i for i in interior if i in skipped),
        tuple(i for i in interior if i not in skipped),
        steps,
        measured,
    )
