"""Human progress on stderr: step k of about n, the candidate, trials, an ETA.

A plain callable (event, fields) so the pipeline stays free of rendering; tests pass
their own or none.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any


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

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None:
        if event == "trial":
            self.trials += 1
            return
        if event == "resume":
            self._print(
                f"resuming run {fields['run_id']} ({fields['trials']} trials already journaled)"
            )
        elif event == "probe":
            self.step += 1
            about = f"/~{self.expected}" if self.expected else ""
            elapsed = time.monotonic() - self.t0
            eta = ""
            if self.expected and self.step > 1:
                per = elapsed / (self.step - 1)
                eta = f", ETA {max(0.0, per * (self.expected - self.step + 1)):.0f}s"
            self._print(
                f"[step {self.step}{about}] {fields['phase']}: {fields['commit']} "
                f"{str(fields.get('subject', ''))[:60]}{eta}"
            )
        elif event == "verdict":
            median = fields.get("median")
            med = f"{median:.3f}" if isinstance(median, float) else "–"
            self._print(
                f"    {fields['short']}: {fields['verdict']} after {fields['samples']} trials (median {med})"
            )
        elif event == "range":
            self.set_range(int(fields["n"]))
            self._print(f"bisecting {fields['n']} commits ({fields['phase']})")
