"""`benchmark.reference: auto`: reference outputs made once at the good endpoint.

Output agreement (the accuracy side of a regression) needs the good revision's outputs
to compare with. With `reference: auto`, before any trial, the benchmark runs once at
the good endpoint with `BISECTOR_REFERENCE_OUT=<file>`; it saves its outputs there (the
built-in harness does: `--reference-out`). Every trial of the run then gets
`BISECTOR_REFERENCE_IN=<file>` (the harness: `--reference-in`) and prints its agreement
metrics. The file lives under the run's folder (`<store>/runs/<run id>/reference/`), so
it is made once per run: a resumed run uses the one it made. That run is a preparation,
not a trial: it is not journaled and no verdict reads it (its log is kept next to it).
"""

from __future__ import annotations

from pathlib import Path

from bisector.core.types import Commit
from bisector.engine.measure import Measurer
from bisector.engine.runner import TrialRunner
from bisector.errors import BisectorError, BuildError
from bisector.log import get_logger

__all__ = ["REFERENCE_IN_ENV", "REFERENCE_OUT_ENV", "check_reference", "use_reference"]

REFERENCE_OUT_ENV = "BISECTOR_REFERENCE_OUT"
REFERENCE_IN_ENV = "BISECTOR_REFERENCE_IN"
REFERENCE_FILE = "reference.pt"  # the harness's format (torch.save); any benchmark may write any

log = get_logger("bisector.reference")


def check_reference(reference: str | None, builder_name: str) -> None:
    """Refuse, before anything is written, what `reference: auto` cannot do.

    :raises BisectorError: with the docker builder (a container does not see the file).
    """
    if reference == "auto" and builder_name == "docker":
        raise BisectorError(
            "benchmark.reference: auto is not available with the docker builder yet",
            hint="use --builder venv or local, or remove benchmark.reference",
        )


def use_reference(measurer: Measurer, good: Commit) -> Path | None:
    """Make the run's reference at `good` (once), then pass it to every trial.

    None when `benchmark.reference` is not set.
    :raises BisectorError: the good endpoint cannot be built, its benchmark failed, or it
        wrote no file at `BISECTOR_REFERENCE_OUT`.
    """
    benchmark = measurer.benchmark
    if benchmark.reference != "auto":
        return None
    folder = measurer.run_dir / "reference"
    path = folder / REFERENCE_FILE
    if not path.is_file():
        _make(measurer, good, folder, path)
    measurer.benchmark = benchmark.model_copy(
        update={"env": {**benchmark.env, REFERENCE_IN_ENV: str(path)}}
    )
    return path


def _make(measurer: Measurer, good: Commit, folder: Path, path: Path) -> None:
    benchmark = measurer.benchmark
    hint = f"see the logs under {folder}"
    try:
        built = measurer.builder.prepare(good, measurer.checkouts.get(good))
    except BuildError as exc:
        raise BisectorError(
            f"benchmark.reference: auto: the good endpoint {good.short} cannot be built: {exc.message}",
            hint=exc.hint,
        ) from exc
    folder.mkdir(parents=True, exist_ok=True)
    making = benchmark.model_copy(update={"env": {**benchmark.env, REFERENCE_OUT_ENV: str(path)}})
    log.info("making reference outputs", commit=good.short, path=str(path))
    result = TrialRunner(folder, timeout_s=benchmark.timeout).measure_in(built, making)
    if not result.ok:
        raise BisectorError(
            f"benchmark.reference: auto: the benchmark failed at the good endpoint {good.short} "
            f"({result.reason or f'exit {result.exit_code}'})",
            hint=f"{hint} ({result.stderr_path.name})",
        )
    if not path.is_file():
        raise BisectorError(
            f"benchmark.reference: auto: the benchmark at {good.short} wrote no reference "
            f"outputs to ${REFERENCE_OUT_ENV}",
            hint="the built-in harness (python -m bisector.bench) writes them; a benchmark of "
            f"your own must save its outputs at the path in ${REFERENCE_OUT_ENV} "
            "(docs/benchmark-protocol.md)",
        )
