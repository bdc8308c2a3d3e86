"""A new run's id: when it started and which request it is, safe as a folder name."""

from __future__ import annotations

import hashlib
import re
import time

# The key of a `deps` / `config` isolation run starts so: it resumes as any run, but
# `runs` and `report latest` leave it out (its document is not a bisection's).
ISOLATION_KEY = "isolate:"


def new_run_id(key: str, now: float) -> str:
    """`20261205-061131-0123abcd`: the start (UTC) and the key's first 8 characters when
    they are hex (a run's key is a digest), else 8 of the key's sha256. An isolation run's
    key starts with `isolate:`, and the id names the `runs/<id>/` folder: no colon in it."""
    head = key[:8]
    if not re.fullmatch(r"[0-9a-f]{8}", head):
        head = hashlib.sha256(key.encode()).hexdigest()[:8]
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + head
