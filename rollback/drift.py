"""Drift: live files that differ from what bisector last wrote (someone edited them)."""

from __future__ import annotations

from rollback.configset import sha256_hex
from rollback.layout import Layout, live_state, read_live_files, read_live_record, read_manifest


def detect_drift(layout: Layout) -> list[str]:
    """Paths that were edited, added or removed since bisector's last write (sorted).

    Nothing drifts on a target bisector never wrote: the first rollback adopts it.
    """
    record = read_live_record(layout)
    if record is None:
        return []
    gen = str(record["gen"])
    manifest = read_manifest(layout, gen)
    expected: dict[str, str] = dict(manifest["files"]) if manifest else {}
    state = live_state(layout)
    live = read_live_files(layout)
    drifted = {
        p
        for p in expected.keys() | live.keys()
        if expected.get(p) != (sha256_hex(live[p]) if p in live else None)
    }
    if state.kind != "managed" or state.gen != gen:
        # The symlink itself was replaced or repointed: everything it serves is suspect.
        drifted.add("(live path replaced)")
    return sorted(drifted)
