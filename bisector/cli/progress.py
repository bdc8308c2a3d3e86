"""Human progress on stderr: step k of about n, the candidate, trials, an ETA.

A `Progress` (bisector.ports): the pipeline hands it typed events and stays free of
rendering; tests pass their own or none. Every line goes through `visible`: a subject, a
tag or a warning quoting the repository must not send a terminal escape sequence or a
bidi override to the terminal.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bisector.core.types import Verdict
from bisector.plumbing.escape import visible
from bisector.ports import (
    ISOLATING,
    ProbeStarted,
    ProgressEvent,
    RangeNarrowed,
    Resumed,
    TrialStarted,
    VerdictReached,
    Warned,
)

# The search's phases in words a reader takes for what is measured, not for a verdict
# ("fine: a2efa3dcb9" read as "a2efa3dcb9 is fine"); other phases are shown as they are.
_PHASE_SHOWN = {
    "coarse": "release tag",
    "fine": "commit",
    # isolation's states, in words (the JSON keeps the phase names of docs/json.md)
    "isolate-code": "code alone",
    "isolate-changes": "changes alone",
    "isolate-ddmin": "some changes",
    "isolate-version": "package version",
}


# A step line stays about one terminal line: a longer subject (or isolation state) is cut,
# visibly, so a label cut mid-word is not read as a whole one. The `culprit:` line, the
# verdict line of an isolation state and the reports show it whole.
_SUBJECT_SHOWN = 60


def _clipped(text: str) -> str:
    return text if len(text) <= _SUBJECT_SHOWN else text[: _SUBJECT_SHOWN - 1] + "…"


class ConsoleProgress:
    def __init__(self, console: Any, expected_steps: int | None = None) -> None:
        self._console = console
        self.t0 = time.monotonic()
        self.step = 0
        self.expected = expected_steps
        self.trials = 0
        self.resumed: Resumed | None = None  # this command resumed a stopped run

    def _print(self, text: str) -> None:
        # markup off: "[step 1/~5]" and commit subjects are text, not rich markup
        self._console.print(visible(text), markup=False, highlight=False)

    def set_range(self, n_candidates: int) -> None:
        """A new range (a part of a split one, the changes of a culprit): estimated again."""
        self.expected = self.step + max(1, math.ceil(math.log2(max(2, n_candidates)))) + 1

    def step_label(self) -> str:
        """`[step k/~n]` while the estimate holds (the search's own, `ProbeStarted.left`,
        else the range's); a step past the range's with none of its own (isolation's
        verification) is just `[step k]`: never `[step 8/~5]`."""
        if self.expected and self.step <= self.expected:
            return f"[step {self.step}/~{self.expected}]"
        return f"[step {self.step}]"

    def eta(self) -> str:
        """`, ETA Ns` from the mean time of the steps so far, for the steps left in the
        estimate; nothing past the estimate or under a second (reused trials make steps
        instant: `ETA 0s` said nothing true)."""
        if not self.expected or self.step <= 1 or self.step > self.expected:
            return ""
        per = (time.monotonic() - self.t0) / (self.step - 1)
        left = per * (self.expected - self.step + 1)
        return f", ETA {left:.0f}s" if left >= 1 else ""

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, TrialStarted):
            self.trials += 1
        elif isinstance(event, Warned):
            self._print(f"warning: {event.message}")
        elif isinstance(event, Resumed):
            self.resumed = event
            self._print(f"resuming run {event.run_id} ({event.trials} trials already journaled)")
        elif isinstance(event, ProbeStarted):
            self.step += 1
            if event.left is not None:  # the search's own estimate, made again each step
                self.expected = self.step + event.left - 1
            self._print(
                f"{self.step_label()} {_PHASE_SHOWN.get(event.phase, event.phase)}: "
                f"{event.commit} {_clipped(event.subject)}{self.eta()}"
            )
        elif isinstance(event, VerdictReached):
            med = f"{event.median:.3f}" if isinstance(event.median, float) else "–"
            trials = "1 trial" if event.samples == 1 else f"{event.samples} trials"
            said = event.verdict.value
            if event.verdict is Verdict.SKIP:  # no median, and "after 0 trials" hid the 1 it took
                self._print(
                    f"    {event.label}: untestable: {event.reason or 'no trial gave the metric'}"
                )
                return
            if event.phase == "split":  # not "unclear": it shows a second step
                said = "between the ends (a second regression step): each side is bisected"
            elif event.phase == "beyond":  # bad, and more: a later commit takes some back
                said = "worse than the bad end: the regression lies before it"
            elif event.phase == "reproduce":  # the role given on the command line, no verdict
                said = f"{said} endpoint measured"
            self._print(f"    {event.label}: {said} after {trials} (median {med})")
        elif isinstance(event, RangeNarrowed) and event.what == ISOLATING:
            self.set_range(event.n)  # the changes themselves: no ends among them
            self._print(
                f"isolating {event.n} change{'' if event.n == 1 else 's'} inside the culprit"
            )
        elif isinstance(event, RangeNarrowed):
            self.set_range(event.n)
            inside = max(event.n - 2, 0)  # the span counts its two ends, known already
            what = event.what.removesuffix("s") if inside == 1 else event.what
            self._print(f"bisecting {inside} {what} between known ends")
