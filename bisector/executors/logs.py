"""Where the driver keeps the logs a Ray worker sent back: the local executor's layout.

`<run dir>/<sha12>/trial-<n>.out|err` (a synthetic state: `<sha12>+<what>`), numbered on
after the highest number already there, so a resumed run never overwrites a log.
`TrialLogs.row` writes a returned trial's logs and makes its journal row.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bisector.engine.trialreason import ATTEMPTS_KEY, REASON_KEY
from bisector.ports import TrialStatus
from bisector.store.journal import TrialRow

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

    def row(
        self, out: Mapping[str, Any], *, sha: str, keys: tuple[str, str, str], attempts: int = 1
    ) -> TrialRow:
        """The journal row of a trial `out` (what `ray_task` returned) of `sha`, its logs
        written; `keys` are (run id, environment key, benchmark key). One that is not ok
        keeps its reason and, retried, its `attempts` (`engine.trialreason`)."""
        out_path, err_path = self.path(sha, "out"), self.path(sha, "err")
        out_path.write_bytes(out.get("stdout", b""))
        err_path.write_bytes(out.get("stderr", b""))
        fingerprint = out.get("fingerprint") or {}
        meta = {**out.get("meta", {}), "_node": out.get("node", ""), "_fingerprint": fingerprint}
        if out["status"] != TrialStatus.OK.value:
            meta[REASON_KEY] = out.get("reason") or "failed"
            if attempts > 1:
                meta[ATTEMPTS_KEY] = attempts
        run_id, env_key, bench_key = keys
        return TrialRow(
            run_id=run_id,
            commit_sha=sha,
            env_key=env_key,
            bench_key=bench_key,
            status=TrialStatus(out["status"]).value,
            metrics={k: tuple(v) for k, v in out.get("metrics", {}).items()},
            meta=meta,
            exit_code=out.get("exit_code"),
            duration_s=out.get("duration_s"),
            log_out=str(out_path),
            log_err=str(err_path),
        )
