"""Probabilistic bisection: a posterior over where the first bad commit is. Pure.

The lean rule (`core.sequential.LEAN`) decides each candidate before it moves on: a
candidate whose first process is not clear enough gets a second, and a wrong step is only
undone by a failed verification and a second search of the whole part. Horstein's noisy
binary search (and "Flake-Aware Culprit Finding", ICST 2023) keeps instead a posterior over
the position of the first bad commit and reuses every process: each one multiplies the
posterior by its likelihood ratio, the next process goes to the posterior's median, and
the search ends when one position holds `1 - epsilon` of it (half, `HANDOVER_EPSILON`:
the verification's fresh trials then settle it, `core.verify`). A process that was not
clear only moves the posterior part of the way; the search goes on where the posterior
says, and returns to that commit only if later processes point back at it.

**The model.** Positions k = 1..n-1 of a part with indices 0..n-1 (0 its good end, n-1 its
bad end): "the first bad commit is k" means commits < k are like good and commits >= k like
bad. A process of commit j contributes its log-likelihood ratio L ("like bad" over "like
good", `sequential.process_llrs`: normal about the ends' medians with their pooled spread,
contaminated by outliers, capped) to every position k <= j. With a uniform prior,
log P(k) = sum of L_j over the measured j >= k, up to a constant.

**Commits that cannot be placed.** A commit that could not be measured (a build failure,
exit 125, no metric), or one measured `repeats.max` times without being placed
(`core.partsearch` calls both *blocked*), cannot tell position j from j + 1. Such positions are merged into a block, and
the search ends when one *block* holds `1 - epsilon`: a block of one position is a culprit,
a longer one an honest range whose interior are those commits (as `search.Bisection`
reports SKIP and UNCLEAR).

Nothing here measures: `next_probe` and `result` read the log-likelihood ratios the caller
keeps (`core.partsearch` computes them from the probe's trials), so a resumed run, whose
trials come back from the journal, starts where the killed one stopped.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

#: A culprit is verified only while one position holds this much less than all of the
#: posterior (`core.verify`'s `standing`): 90%, from every trial, the verification's too.
EPSILON = 0.1
#: The search hands its top position to the verification when it holds this much less than
#: all of the posterior (half of it): the verification's fresh trials of parent and culprit
#: are where the search would measure next anyway, so they settle the posterior too, and
#: the last search processes are not spent twice (bench/RESULTS.md "Handing over at half").
HANDOVER_EPSILON = 0.5
#: After a failed verification (`core.hunt`), the part is searched on to this.
ESCALATED_EPSILON = 0.001
#: No process moves the posterior by more than this log-likelihood ratio (a factor of 55),
#: so one wild process never settles a position alone against ten to one.
PROCESS_CAP = 4.0
#: Before its own processes say how fast it learns, a search is taken to learn one bit a
#: process (a clear step halves the posterior each), weighted as this many processes.
RATE_PRIOR = 2


@dataclass(frozen=True)
class Block:
    """Positions first..last (inclusive) that the measurable commits cannot tell apart;
    `mass` is their share of the posterior."""

    first: int
    last: int
    mass: float


def log_posterior(n: int, llr: Mapping[int, float]) -> list[float]:
    """log P(first bad = k) for k = 1..n-1 (item k - 1), up to a constant: the sum of the
    log-likelihood ratios of the interior commits j >= k (uniform prior)."""
    if n < 2:
        raise ValueError("a part needs a good and a bad end (n >= 2)")
    out = [0.0] * (n - 1)
    total = 0.0
    for k in range(n - 2, 0, -1):  # position n-1 has no interior commit at or after it
        total += llr.get(k, 0.0)
        out[k - 1] = total
    return out


def posterior(n: int, llr: Mapping[int, float]) -> list[float]:
    """P(first bad = k) for k = 1..n-1 (item k - 1), normalised."""
    logs = log_posterior(n, llr)
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    total = sum(weights)
    return [w / total for w in weights]


def blocks(n: int, llr: Mapping[int, float], blocked: Collection[int]) -> list[Block]:
    """The posterior over blocks: positions k and k + 1 are one block when commit k is
    `blocked` (it cannot be placed, so nothing tells them apart)."""
    return _blocks(posterior(n, llr), blocked)


def _blocks(probs: Sequence[float], blocked: Collection[int]) -> list[Block]:
    n = len(probs) + 1
    out: list[Block] = []
    first, mass = 1, 0.0
    for k in range(1, n):
        mass += probs[k - 1]
        if k == n - 1 or k not in blocked:
            out.append(Block(first, k, mass))
            first, mass = k + 1, 0.0
    return out


def best_block(n: int, llr: Mapping[int, float], blocked: Collection[int]) -> Block:
    """The block with the most posterior (where the search stands when it must stop)."""
    return max(blocks(n, llr, blocked), key=lambda b: b.mass)


def settled(
    n: int, llr: Mapping[int, float], blocked: Collection[int], epsilon: float = EPSILON
) -> Block | None:
    """The block holding at least `1 - epsilon` of the posterior, when one does."""
    best = best_block(n, llr, blocked)
    return best if _holds(best, epsilon) else None


def _holds(block: Block, epsilon: float) -> bool:
    """One position settles at `1 - epsilon` (a verification follows); a merged block, an
    honest range that nothing verifies, at `1 - EPSILON` at least."""
    return block.mass >= 1 - (epsilon if block.first == block.last else min(epsilon, EPSILON))


def next_probe(
    n: int,
    llr: Mapping[int, float],
    blocked: Collection[int],
    epsilon: float = EPSILON,
    excluded: Collection[int] = (),
) -> int | None:
    """The interior commit to measure next: the one whose "is it bad?" splits the
    posterior most evenly (Horstein's median rule), among those neither `blocked` nor
    `excluded` (spent, or not a release tag in a coarse pass); None when the search is
    settled or nothing is left to measure."""
    probs = posterior(n, llr)
    if any(_holds(b, epsilon) for b in _blocks(probs, blocked)):
        return None
    best: int | None = None
    best_gap = 2.0
    below = 0.0  # P(first bad <= j)
    for j in range(1, n - 1):
        below += probs[j - 1]
        if j in blocked or j in excluded:
            continue
        gap = abs(below - 0.5)
        if gap < best_gap:
            best, best_gap = j, gap
    return best


def interval_mass(n: int, llr: Mapping[int, float], after: int, upto: int) -> float:
    """P(after < first bad <= upto): the posterior between two commits (two release tags)."""
    probs = posterior(n, llr)
    return sum(probs[k - 1] for k in range(max(after + 1, 1), min(upto, n - 1) + 1))


def bits_left(
    n: int, llr: Mapping[int, float], blocked: Collection[int], epsilon: float = EPSILON
) -> float:
    """About what the search has still to learn, in bits: the entropy of the posterior over
    blocks, less the log2(1 / (1 - epsilon)) that a block settled at `1 - epsilon` leaves
    (nine equal positions at the hand-over: log2(9) - 1)."""
    masses = [b.mass for b in blocks(n, llr, blocked) if b.mass > 0]
    return max(0.0, -sum(m * math.log2(m) for m in masses) + math.log2(1 - epsilon))


@dataclass
class StepsLeft:
    """About how many processes a search still takes, the next one included (the n of the
    progress's `[step k/~n]`), made again before each: the bits left (`bits_left`) at the
    rate the search's own processes learned them so far (`RATE_PRIOR`). A commit measured
    again and again (noise, a commit between the ends) teaches little, so the estimate
    grows as that happens instead of being overrun; never past `most` (the cap's rest)."""

    start: float | None = None  # the bits left before the first process

    def __call__(self, bits: float, taken: int, most: int) -> int:
        if self.start is None:
            self.start = bits
        rate = (max(self.start - bits, 0.0) + RATE_PRIOR) / (taken + RATE_PRIOR)
        return max(1, min(math.ceil(bits / rate), most))
