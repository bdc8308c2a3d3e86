"""``python -m bisector.bench``: the public name of the benchmark harness.

The harness lives in :mod:`bisector.harness` (so it no longer shares a name with the
repository's top-level ``bench/``, which benchmarks bisector itself). This alias keeps the
documented command and ``import bisector.bench`` working; it imports no torch.
"""

from __future__ import annotations

from bisector.harness import PROTOCOL_METADATA_PREFIX

__all__ = ["PROTOCOL_METADATA_PREFIX"]
