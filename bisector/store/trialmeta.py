"""A trial's metadata as the journal keeps it: bounded in size.

A trial's metadata (its JSON line's non-metric keys) is kept up to `META_LIMIT_BYTES`;
beyond it the keys that do not fit are dropped and `_truncated` says how much (30 MB of
keys per trial once grew a journal to 1.6 GB).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

META_LIMIT_BYTES = 64 * 1024
TRUNCATED_KEY = "_truncated"


def bounded_meta(meta: Mapping[str, Any], limit: int = META_LIMIT_BYTES) -> str:
    """`meta` as JSON of at most `limit` bytes: whole keys, in their order, that fit, and a
    `_truncated` note of what was dropped."""
    text = json.dumps(dict(meta), default=str)
    if len(text.encode()) <= limit:
        return text
    kept: dict[str, Any] = {}
    used = 2 + 200  # the braces, and room for the note
    for key, value in meta.items():
        item = len(json.dumps({key: value}, default=str).encode())
        if used + item > limit:
            continue  # too big: later, smaller keys (`_gpu`) may still fit
        kept[key] = value
        used += item
    kept[TRUNCATED_KEY] = {"bytes": len(text.encode()), "keys": len(meta), "kept_keys": len(kept)}
    return json.dumps(kept, default=str)
