"""Pure numeric helpers (standard library only)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation (numpy's default)."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def settled(history: Sequence[float], window: int, tolerance: float) -> bool:
    """True when the median of the last `window` timings moved less than `tolerance`
    (relative) from the median of the `window` before them."""
    if len(history) < 2 * window:
        return False
    last = statistics.median(history[-window:])
    before = statistics.median(history[-2 * window : -window])
    if before <= 0:
        return last <= 0
    return abs(last - before) / before < tolerance
