"""What a hunt decided (`core.hunt`): its steps and its result. Pure data."""

from __future__ import annotations

from dataclasses import dataclass

from bisector.core import judge, noise
from bisector.core.types import Status, Verdict
from bisector.core.verify import Found

__all__ = ["HuntResult", "HuntStep"]


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
