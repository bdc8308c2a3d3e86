"""The run document: what `bisector run` decided, produced once, read everywhere.

The pipeline builds one `RunDocument`; the journal stores `to_json()`; the reports, the
CLI and the daemon read the typed fields (`from_json` when loading from the journal).
`to_json` is the JSON of the contract, key for key and in the same order as the dict the
pipeline used to build; `from_json` also reads documents stored by earlier versions,
which lack some keys (`options`, `bench_key`, sections of runs that stopped early).

The run's options and benchmark key travel inside the document, so re-rendering a report
never reads the current config (which may have changed since the run).

Pure: no git, SQLite or subprocess here. Parts whose shape belongs to another module (an
isolation's changes and per-item checks, a rollback's result) stay JSON mappings.
"""

from bisector.document.findings import (
    Comparison,
    Culprit,
    Dependency,
    Isolation,
    IsolationStep,
    Verification,
)
from bisector.document.node_types import NodeTypeTrials
from bisector.document.run import (
    CulpritCommit,
    Details,
    Endpoint,
    NoiseReport,
    Range,
    Reuse,
    RunDocument,
    RunOptions,
    Step,
)

__all__ = [
    "Comparison",
    "Culprit",
    "CulpritCommit",
    "Dependency",
    "Details",
    "Endpoint",
    "Isolation",
    "IsolationStep",
    "NodeTypeTrials",
    "NoiseReport",
    "Range",
    "Reuse",
    "RunDocument",
    "RunOptions",
    "Step",
    "Verification",
]
