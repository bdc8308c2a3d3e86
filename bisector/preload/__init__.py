"""`benchmark.preload`: a fork server per environment, so a trial skips the heavy imports.

Every trial is still a process of its own (the judge's unit of independence), but with
`benchmark.preload: [torch, transformers]` it is forked from a server that imported those
modules once, in that environment's interpreter, instead of being a fresh interpreter.
`launcher.PreloadPool` owns a run's servers and hands the runner a `TrialLauncher` per
built environment; `server.PreloadServer` is one server seen from bisector; `_server.py`
is the server itself (standard library only, run by the environment's interpreter).
Docs: docs/config.md (`benchmark.preload`), docs/benchmark-protocol.md.
"""

from __future__ import annotations

from bisector.preload.launcher import PreloadPool
from bisector.preload.server import PreloadError

__all__ = ["PreloadError", "PreloadPool"]
