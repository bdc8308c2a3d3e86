"""What the endpoints' trials say about the noise, and whether the threshold can be seen in it.

Pure functions over samples grouped by process (see `core.judge`). Three numbers, all
relative to the good endpoint's median:

- **between-process CV**: the spread of the per-process medians (what the judge tests
  on, so the one that decides how many trials a verdict needs);
- **within-process CV**: the typical spread of the samples inside one process;
- **endpoint drift**: how far an endpoint's process medians moved from the first half of
  the run to the second (the endpoints are re-measured during the search), the larger of
  the two endpoints.

`threshold_warning` says, before the search, when the threshold is smaller than what that
between-process spread lets the judge see within `repeats.max` trials, and which `repeats`
or threshold would do.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from bisector.core.judge import Samples, process_medians
from bisector.core.types import MAX_REPEATS, MetricRule, TrialBudget

# A shift of Z_DETECT process standard errors is seen at alpha 0.01 (two-sided, 2.58)
# with about 80% power (0.84): the usual sample-size rule, which the rank tests come
# close to (their efficiency against the t test is 0.95 for normal noise).
Z_DETECT = 2.58 + 0.84


@dataclass(frozen=True)
class EndpointNoise:
    """The spread of one endpoint's trials, relative to the good endpoint's median."""

    between_process_cv: float
    within_process_cv: float
    drift: float
    processes: int


@dataclass(frozen=True)
class Noise:
    """What the run saw; the headline numbers are the larger of the two endpoints'."""

    good: EndpointNoise
    bad: EndpointNoise
    warning: str | None = None  # the threshold is below what this noise allows

    @property
    def between_process_cv(self) -> float:
        return max(self.good.between_process_cv, self.bad.between_process_cv)

    @property
    def within_process_cv(self) -> float:
        return max(self.good.within_process_cv, self.bad.within_process_cv)

    @property
    def endpoint_drift(self) -> float:
        return max(self.good.drift, self.bad.drift)


def endpoint_noise(samples: Samples, baseline: float) -> EndpointNoise:
    """The spread of one endpoint's samples (processes in the order they were taken)."""
    if not samples or not baseline:
        return EndpointNoise(0.0, 0.0, 0.0, len(samples))
    scale = abs(baseline)
    medians = process_medians(samples)
    between = statistics.stdev(medians) / scale if len(medians) >= 2 else 0.0
    within = [statistics.stdev(g) / scale for g in samples if len(g) >= 2]
    drift = 0.0
    if len(medians) >= 4:
        half = len(medians) // 2
        drift = abs(statistics.median(medians[-half:]) - statistics.median(medians[:half])) / scale
    return EndpointNoise(
        round(between, 4),
        round(statistics.median(within), 4) if within else 0.0,
        round(drift, 4),
        len(medians),
    )


def measure(good: Samples, bad: Samples, warning: str | None = None) -> Noise:
    """Both endpoints' noise, relative to the good endpoint's median."""
    baseline = statistics.median(process_medians(good)) if good else 0.0
    return Noise(endpoint_noise(good, baseline), endpoint_noise(bad, baseline), warning)


def detectable_shift(cv: float, n: int) -> float:
    """The relative shift n vs n processes with this between-process CV can show."""
    return Z_DETECT * cv * math.sqrt(2 / n)


def threshold_warning(
    noise: Noise, rule: MetricRule, repeats: TrialBudget, baseline: float
) -> str | None:
    """A sentence when the threshold is below what the noise allows within repeats.max.

    Names the `repeats.max` that would do and the threshold that would with today's repeats;
    only the threshold when that `repeats.max` is above what the config accepts
    (`MAX_REPEATS`): suggesting it would only be refused.
    """
    cv = noise.between_process_cv
    if cv <= 0 or not baseline:
        return None
    threshold = rule.threshold.min_shift(baseline) / abs(baseline)
    seen = detectable_shift(cv, repeats.max)
    if threshold >= seen:
        return None
    needed = math.ceil(2 * (Z_DETECT * cv / threshold) ** 2) if threshold > 0 else None
    raise_to = math.ceil(seen * 200) / 200  # up to the next half percent
    shown = f"{raise_to * 100:g}%" if rule.threshold.relative else f"{raise_to * abs(baseline):.3g}"
    if needed is not None and needed > MAX_REPEATS:  # no repeats.max config accepts would do
        fix = f"set the threshold to {shown} (repeats.max would need {needed}, above its maximum {MAX_REPEATS})"
    else:
        more = f"raise repeats.max to {needed}" if needed is not None else "set a threshold above 0"
        fix = f"{more}, or set the threshold to {shown}"
    return (
        f"the threshold {rule.threshold} is below what this noise allows within repeats.max "
        f"{repeats.max} (between-process spread {cv * 100:.1f}% at the endpoints, "
        f"{noise.good.processes} + {noise.bad.processes} processes): {fix}"
    )
