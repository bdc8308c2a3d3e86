"""A trial as the journal keeps it, and the one way a `trials` row is read back.

Every reader of trials (a run resuming or reusing them, the HTML report's plots) gets its
rows through `trial_from_row`, which checks what a row edited by hand could break: the
metrics are an object of lists of numbers, the metadata an object. A row that is not is
a `ValueError` naming the column, which `SqliteFile.reading_back` turns into the same
"damaged record" error a damaged run row gives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrialRow:
    commit_sha: str
    env_key: str
    bench_key: str
    status: str  # ok | skip | failed
    metrics: Mapping[str, tuple[float, ...]]
    meta: Mapping[str, Any]
    exit_code: int | None = None
    duration_s: float | None = None
    log_out: str | None = None
    log_err: str | None = None
    run_id: str = ""

    @property
    def ok(self) -> bool:
        """The trial succeeded (it may still lack the metric a run asks for)."""
        return self.status == "ok"


def trial_from_row(row: tuple[Any, ...]) -> TrialRow:
    """A `SELECT * FROM trials` row as a `TrialRow`; `ValueError` when a column holds
    something bisector never writes there."""
    metrics = _object(row[6], "metrics")
    for name, values in metrics.items():
        # bool is an int to Python, but never a sample; the plots need real numbers
        if not isinstance(values, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in values
        ):
            raise ValueError(f"its metric {name!r} is not a list of numbers")
    return TrialRow(
        run_id=row[1],
        commit_sha=row[2],
        env_key=row[3],
        bench_key=row[4],
        status=str(row[5]),
        metrics={k: tuple(float(x) for x in v) for k, v in metrics.items()},
        meta=_object(row[7], "meta"),
        exit_code=row[8],
        duration_s=row[9],
        log_out=row[10],
        log_err=row[11],
    )


def _object(text: Any, column: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise ValueError(f"its {column} column is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"its {column} column is not a JSON object")
    return value
