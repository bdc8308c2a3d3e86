"""The HTML report's figures: matplotlib (Agg, no display) rendered to PNG bytes.

Pure over plain data, so the figures can be tested without a run: a series of tested
commits across the candidate range, and the sample distributions of a few commits.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

VERDICT_COLOURS = {"good": "#2e7d32", "bad": "#c62828", "skip": "#9e9e9e", "unclear": "#f9a825"}


@dataclass(frozen=True)
class RangePoint:
    """One commit of the candidate range, oldest first; `medians` are per-process medians."""

    index: int
    label: str
    verdict: str | None  # None: not tested
    medians: tuple[float, ...]


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, imported when a figure is drawn.

    Lazy on purpose: importing it costs ~0.6 s, and every `bisector` command that reaches
    the pipeline (even one refused at once for bad input) would pay it.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # before pyplot: a daemon has no display
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def range_plot(points: Sequence[RangePoint], metric: str, culprit_index: int | None) -> bytes:
    """The metric across the candidate range: each tested commit's process medians."""
    fig, ax = _pyplot().subplots(figsize=(10, 3.8))
    for p in points:
        if not p.medians:
            ax.axvline(p.index, color="#eeeeee", linewidth=1, zorder=0)
            continue
        colour = VERDICT_COLOURS.get(p.verdict or "", "#1565c0")
        ax.scatter([p.index] * len(p.medians), p.medians, s=14, alpha=0.6, color=colour)
        mid = sorted(p.medians)[len(p.medians) // 2]
        ax.scatter([p.index], [mid], s=70, marker="_", color="black")
    if culprit_index is not None:
        ax.axvline(culprit_index - 0.5, color=VERDICT_COLOURS["bad"], linestyle="--", linewidth=1)
    ax.set_xticks([p.index for p in points])
    ax.set_xticklabels([p.label for p in points], rotation=60, fontsize=7, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} across the candidate range (dots: per-process medians)")
    for verdict, colour in VERDICT_COLOURS.items():
        ax.scatter([], [], color=colour, label=verdict)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def distribution_plot(groups: Mapping[str, Sequence[float]], metric: str) -> bytes:
    """Box plots with the individual samples of each named group (good, parent, culprit, bad)."""
    names = [n for n, v in groups.items() if v]
    fig, ax = _pyplot().subplots(figsize=(10, 3.8))
    if names:
        data = [list(groups[n]) for n in names]
        ax.boxplot(data, showfliers=False)
        for i, values in enumerate(data, 1):
            jitter = [i + ((k % 7) - 3) * 0.03 for k in range(len(values))]
            ax.scatter(jitter, values, s=6, alpha=0.35, color="#1565c0")
        ax.set_xticks(range(1, len(names) + 1))
        ax.set_xticklabels(names)
    ax.set_ylabel(metric)
    ax.set_title(f"distribution of {metric} samples")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
