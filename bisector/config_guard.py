"""The `guard:` section of `bisector.yaml` (see docs/config.md#guard): checks over live
metrics in Prometheus, a canary, and what to do on a held breach."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from bisector.config_strict import Strict, _short
from bisector.config_values import Duration, ThresholdField
from bisector.core.types import Threshold

# Points of one series a Prometheus range query may return (its "maximum resolution").
MAX_POINTS = 11_000


class GuardCheck(Strict):
    """One live metric: breached when past `max` (or under `min`) for the whole `for` window."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    query: str = Field(
        min_length=1, description="PromQL; one value (or the worst of several series)"
    )
    max: float | None = Field(None, allow_inf_nan=False)
    min: float | None = Field(None, allow_inf_nan=False)
    for_: Duration = Field(300.0, alias="for")

    @model_validator(mode="after")
    def _one_limit(self) -> GuardCheck:
        if (self.max is None) == (self.min is None):
            raise ValueError("a check needs exactly one of max or min")
        return self


class GuardCanary(Strict):
    """Canary against baseline over `window`, judged like a bisection step (Kayenta-style)."""

    baseline: str = Field(min_length=1, description="PromQL of the baseline's metric")
    canary: str = Field(min_length=1, description="PromQL of the canary's metric")
    metric: str | None = Field(
        None, description="a name in `metrics:` whose direction applies (else lower)"
    )
    threshold: ThresholdField = Threshold(0.05, relative=True)
    window: Duration = 600.0


def check_http_url(url: str, example: str = "http://127.0.0.1:9090") -> str:
    """An http(s) URL with a host (urllib would also open file:// and ftp://)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {_short(url)} (e.g. {example})")
    return url


def _check_prometheus_url(url: str) -> str:
    return check_http_url(url).rstrip("/")


class Guard(Strict):
    """`bisector guard`: live metrics in Prometheus, a rollback on a held breach."""

    prometheus: Annotated[str, AfterValidator(_check_prometheus_url)]
    interval: Duration = 15.0
    timeout: Duration = Field(5.0, description="per Prometheus query")
    rollback_to: str | None = None
    on_breach: Literal["rollback", "alert"] = "rollback"
    bisect_after_rollback: bool = False
    blind_after: int = Field(
        3, ge=1, le=10_000, description="blind evaluations before the 'guard is blind' alert"
    )
    checks: list[GuardCheck] = Field(default_factory=list)
    canary: GuardCanary | None = None

    @model_validator(mode="after")
    def _names(self) -> Guard:
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError("guard.checks: every check needs its own name")
        if not self.checks and self.canary is None:
            raise ValueError("needs at least one check or a canary")
        windows = [(f"checks[{i}] ({c.name}) for", c.for_) for i, c in enumerate(self.checks)]
        windows += [("canary.window", self.canary.window)] if self.canary else []
        for what, seconds in windows:
            # Prometheus refuses a range query of more points: the check would be blind
            # forever, and its answer ("decrease the query resolution") names no key.
            if seconds / self.interval + 1 > MAX_POINTS:
                raise ValueError(
                    f"{what} {seconds:g}s at interval {self.interval:g}s needs "
                    f"{int(seconds / self.interval) + 1} samples a query; Prometheus returns at "
                    f"most {MAX_POINTS:,}: raise guard.interval or shorten it"
                )
        return self
