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
    """One commit of the candidate range, oldest first; `medians` are per-process medians.

    `kinds`: for a run over several node types, each median's type (an index into the
    plot's `types`), else empty."""

    index: int
    label: str
    verdict: str | None  # None: not tested
    medians: tuple[float, ...]
    kinds: tuple[int, ...] = ()


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


LEGEND_NAMES = {
    "good": "trials of a good commit",
    "bad": "trials of a bad commit",
    "skip": "trials of an untestable commit",
    "unclear": "trials of an unclear commit",
}
NO_VERDICT_COLOUR = "#1565c0"  # measured, but no verdict of the search (the culprit's parent)
NOT_MEASURED_COLOUR = "#dddddd"
TRIALS_ID = "trials-"  # SVG group of one commit's trials: `trials-<index>`, one mark per trial
# Several node types: `trials-<index>-<type>`, one marker shape and x offset a type.
TYPE_MARKERS = ("o", "^", "s", "D", "v", "P")
TYPE_COLOUR = "#616161"  # the legend's marks of the node types: shape only, no verdict


def range_svg(
    points: Sequence[RangePoint],
    metric: str,
    culprit_index: int | None,
    types: Sequence[str] = (),
) -> str:
    """The metric across the candidate range, as inline SVG: one mark per trial (its
    process median) in the group `trials-<index>`, so a page's points can be counted.

    Over several node types (`types`, two or more) each type is its own series, never
    pooled: the group `trials-<index>-<type>`, a marker shape and an x offset of its own,
    and its own median mark (`median-<index>-<type>`). Every kind of mark drawn is in the
    legend, and only those drawn.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.8))
    shown: dict[str, Any] = {}
    mixed = len(types) > 1
    for p in points:
        if not p.medians:
            ax.axvline(p.index, color=NOT_MEASURED_COLOUR, linewidth=1, zorder=0)
            shown.setdefault("not measured in this run", ("line", NOT_MEASURED_COLOUR, "-"))
            continue
        colour = VERDICT_COLOURS.get(p.verdict or "", NO_VERDICT_COLOUR)
        name = LEGEND_NAMES.get(p.verdict or "", "trials of a commit without a verdict")
        shown.setdefault(name, ("dot", colour, "o"))
        kinds = p.kinds if mixed else (0,) * len(p.medians)
        for k in sorted(set(kinds)):
            medians = [m for m, kind in zip(p.medians, kinds, strict=True) if kind == k]
            x = p.index + ((k - (len(types) - 1) / 2) * 0.5 / len(types) if mixed else 0.0)
            suffix, marker = (
                (f"{p.index}-{k}", TYPE_MARKERS[k % len(TYPE_MARKERS)])
                if mixed
                else (str(p.index), "o")
            )
            ax.scatter(
                [x] * len(medians),
                medians,
                s=14,
                alpha=0.6,
                color=colour,
                marker=marker,
                gid=f"{TRIALS_ID}{suffix}",
            )
            mid = sorted(medians)[len(medians) // 2]
            ax.scatter([x], [mid], s=70, marker="_", color="black", gid=f"median-{suffix}")
            if mixed:
                shown.setdefault(f"trials on {types[k]}", ("dot", TYPE_COLOUR, marker))
        shown.setdefault(
            "median of a commit's trials" + (" on one node type" if mixed else ""),
            ("median", "black", ""),
        )
    if culprit_index is not None:
        ax.axvline(culprit_index - 0.5, color=VERDICT_COLOURS["bad"], linestyle="--", linewidth=1)
        shown["culprit: first bad commit right of the line"] = (
            "line",
            VERDICT_COLOURS["bad"],
            "--",
        )
    ax.set_xticks([p.index for p in points])
    ax.set_xticklabels([p.label for p in points], rotation=60, fontsize=7, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} across the candidate range (each dot: one trial's median)")
    for label, (kind, colour, style) in shown.items():
        if kind == "line":
            ax.plot([], [], color=colour, linestyle=style, label=label)
        elif kind == "median":
            ax.scatter([], [], s=70, marker="_", color=colour, label=label)
        else:
            ax.scatter([], [], color=colour, marker=style, label=label)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def _svg(fig: Figure) -> str:
    """The figure as an `<svg>` element to inline: text stays text, ids are stable (a
    fixed salt), no date (the same run renders the same page)."""
    plt = _pyplot()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "bisector"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :].rstrip()


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
