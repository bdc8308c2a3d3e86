"""The Prometheus HTTP API adapter: instant and range queries with urllib, a timeout each.

Every failure (unreachable, a timeout, an HTTP or PromQL error, a malformed answer, an
empty result or one of only NaN) comes back as a `Blind` value, never as an exception:
what the guard cannot see is no reason to act, and a caller that forgot an `except` must
not roll back.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from bisector.plumbing.httpbound import ExchangeTimeout, exchange, split_userinfo
from bisector.plumbing.redact import scrub_text

Sample = tuple[float, float]


@dataclass(frozen=True)
class Series:
    labels: tuple[tuple[str, str], ...]
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class Data:
    """A query's answer: one or more series (an instant query's have one sample each)."""

    series: tuple[Series, ...]


@dataclass(frozen=True)
class Blind:
    """No answer: why, in one line (no URL credentials)."""

    reason: str


Result = Data | Blind


class Prometheus:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        # `http://user:password@host:9090` (a Prometheus behind basic auth): urllib cannot
        # open a URL with userinfo, so it goes in an Authorization header.
        url, self._authorization = split_userinfo(url)
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def instant(self, query: str, at: float | None = None) -> Result:
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params)

    def range(self, query: str, start: float, end: float, step: float) -> Result:
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return self._get("/api/v1/query_range", params)

    def _get(self, path: str, params: dict[str, str]) -> Result:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            return Blind("the Prometheus URL is not http(s)")
        request = urllib.request.Request(url)
        if self._authorization is not None:
            request.add_unredirected_header("Authorization", self._authorization)
        try:
            # The timeout bounds the whole query, also against an answer sent byte by byte.
            answer = exchange(
                request, self.timeout_s, follow_redirects=True, max_body=64 * 1024 * 1024
            )
        except ExchangeTimeout:
            return Blind(f"Prometheus did not answer: timed out after {self.timeout_s:.1f}s")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return Blind(scrub_text(f"Prometheus unreachable: {type(exc).__name__}: {reason}"))
        body = answer.body
        if answer.status >= 300:
            # Prometheus answers a bad query with 400 and a JSON error: say what it said.
            try:
                detail = json.loads(body).get("error", "")
            except (ValueError, AttributeError):
                detail = ""
            return Blind(scrub_text(f"HTTP {answer.status} {detail}".strip()))
        return parse_answer(body)


def parse_answer(body: bytes) -> Result:
    """The `data.result` of a query answer as series; `Blind` for anything else."""
    try:
        doc = json.loads(body)
    except ValueError:
        return Blind("Prometheus answered something that is not JSON")
    if not isinstance(doc, dict) or doc.get("status") != "success":
        error = doc.get("error") if isinstance(doc, dict) else None
        return Blind(scrub_text(f"query failed: {error or 'no status'}"))
    data = doc.get("data")
    if not isinstance(data, dict):
        return Blind("malformed answer: no data")
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar":
            series: list[Series] = [Series((), (_sample(result),))]
        elif kind in ("vector", "matrix") and isinstance(result, list):
            series = [_series(item, kind) for item in result]
        else:
            return Blind(f"unsupported result type {kind!r}")
    except (TypeError, ValueError, KeyError, IndexError):
        return Blind("malformed answer")
    if not series:
        return Blind("empty result (no series)")
    series = [s for s in series if s.samples]
    if not series:
        return Blind("no value (only NaN, e.g. 0/0 or a histogram with no observations)")
    return Data(tuple(series))


def _sample(pair: Any) -> Sample:
    return float(pair[0]), float(pair[1])  # Prometheus writes values as strings ("NaN" too)


def _series(item: Any, kind: str) -> Series:
    labels = tuple(sorted((str(k), str(v)) for k, v in dict(item.get("metric", {})).items()))
    raw = [item["value"]] if kind == "vector" else list(item["values"])
    # NaN is no value (0/0, a histogram_quantile of no observations); ±Inf is one (`1/0`:
    # the query saw something, past any `max`), and must not blind the check it breaches.
    samples = tuple(s for s in (_sample(p) for p in raw) if not math.isnan(s[1]))
    return Series(labels, samples)
