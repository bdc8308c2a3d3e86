"""Where the driver keeps the logs a Ray worker sent back: the local executor's layout.

`<run dir>/<sha12>/trial-<n>.out|err` (a synthetic state: `<sha12>+<what>`), numbered on
after the highest number already there, so a resumed run never overwrites a log.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

_TRIAL_FILE = re.compile(r"^trial-(\d+)\.(?:out|err)$")


class TrialLogs:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._numbers: dict[Path, Iterator[int]] = {}
        self._current = 0

    def folder(self, sha: str) -> Path:
        head, _, rest = sha.partition("+")
        folder = self.run_dir / (head[:12] + ("+" + rest.replace(":", "-") if rest else ""))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def path(self, sha: str, what: str) -> Path:
        """`build.log`, or the next trial's `.out` (which numbers it) and then its `.err`."""
        folder = self.folder(sha)
        if what == "build":
            return folder / "build.log"
        if what == "out":
            counter = self._numbers.get(folder)
            if counter is None:
                found = [
                    int(m.group(1)) for p in folder.iterdir() if (m := _TRIAL_FILE.match(p.name))
                ]
                counter = itertools.count(max(found, default=0) + 1)
                self._numbers[folder] = counter
            self._current = next(counter)
        return folder / f"trial-{self._current}.{what}"
