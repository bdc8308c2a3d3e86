"""Human progress on stderr: step k of about n, the candidate, trials, an ETA.

A `Progress` (bisector.ports): the pipeline hands it typed events and stays free of
rendering; tests pass their own or none.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bisector.ports import (
    ProbeStarted,
    ProgressEvent,
    RangeNarrowed,
    Resumed,
    TrialStarted,
    VerdictReached,
    Warned,
)


class ConsoleProgress:
    def __init__(self, console: Any, expected_steps: int | None = None) -> None:
        self._console = console
        self.t0 = time.monotonic()
        self.step = 0
        self.expected = expected_steps
        self.trials = 0

    def _print(self, text: str) -> None:
        # markup off: "[step 1/~5]" and commit subjects are text, not rich markup
        self._console.print(text, markup=False, highlight=False)

    def set_range(self, n_candidates: int) -> None:
        self.expected = self.step + max(1, math.ceil(math.log2(max(2, n_candidates)))) + 1

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, TrialStarted):
            self.trials += 1
        elif isinstance(event, Warned):
            self._print(f"warning: {event.message}")
        elif isinstance(event, Resumed):
            self._print(f"resuming run {event.run_id} ({event.trials} trials already journaled)")
        elif isinstance(event, ProbeStarted):
            self.step += 1
            about = f"/~{self.expected}" if self.expected else ""
            elapsed = time.monotonic() - self.t0
            eta = ""
            if self.expected and self.step > 1:
                per = elapsed / (self.step - 1)
                eta = f", ETA {max(0.0, per * (self.expected - self.step + 1)):.0f}s"
            self._print(
                f"[step {self.step}{about}] {event.phase}: {event.commit} {event.subject[:60]}{eta}"
            )
        elif isinstance(event, VerdictReached):
            med = f"{event.median:.3f}" if isinstance(event.median, float) else "–"
            self._print(
                f"    {event.label}: {event.verdict.value} after {event.samples} trials (median {med})"
            )
        elif isinstance(event, RangeNarrowed):
            self.set_range(event.n)
            self._print(f"bisecting {event.n} commits ({event.what})")
