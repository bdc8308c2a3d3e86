"""Words the terminal, the Markdown page and the HTML page say alike about a run's numbers.

A number that reads wrong on its own gets its explanation here, once, so the three
outputs cannot drift apart: a step's `share` far above 100% (10 → 20 → 15, or 10 → 5 →
12: other commits of the range move the metric back the better way).
"""

from __future__ import annotations

from bisector.document import Culprit, RunDocument

#: A share above this is explained; a lone step reads 0.97 or 1.03 as often as 1.0
#: (each side measured on its own trials, docs/json.md), and that needs no words.
SHARE_EXPLAINED_ABOVE = 1.2


#: A percentage this large (1000x) or larger is written in powers of ten: a benchmark
#: whose good side measures near 0 gives effects of a hundred digits otherwise.
PERCENT_IN_FULL_BELOW = 1e5


def percent(fraction: float, *, signed: bool = True, digits: int = 1) -> str:
    """`fraction` as a percentage: `+12.3%`; `+1.0e+99%` from 1000x on (`PERCENT_IN_FULL_BELOW`).

    Every effect, shift and share the terminal, the Markdown and HTML pages and the
    alerts show goes through here."""
    value, sign = fraction * 100, "+" if signed else ""
    if abs(value) >= PERCENT_IN_FULL_BELOW:
        return f"{value:{sign}.1e}%"
    return f"{value:{sign}.{digits}f}%"


def share_shown(c: Culprit) -> str:
    """`84%`, or "" when there is no share to show: none, or a suspect whose fresh trials
    moved the other way (a negative share of a regression says nothing; its note says why)."""
    if c.share is None or c.share < 0:
        return ""
    return percent(c.share, signed=False, digits=0)


MOVED_THE_OTHER_WAY = "moved the other way"


def moved_the_other_way(c: Culprit) -> bool:
    """An unverified suspect whose fresh trials moved the metric the better way: its
    `confidence` (1 - p of a two-sided test) says nothing about a regression, and is not shown."""
    if c.verified:
        return False
    return (c.share is not None and c.share < 0) or (c.effect is not None and c.effect < 0)


def confidence_shown(c: Culprit) -> str:
    """`confidence 0.992`, or `moved the other way` for such a suspect."""
    return MOVED_THE_OTHER_WAY if moved_the_other_way(c) else f"confidence {c.confidence:.3f}"


def share_note(doc: RunDocument, c: Culprit) -> str:
    """Why a verified step's share is far above 100%, in numbers; "" when it is not."""
    repro, evidence = doc.details.reproduction, c.evidence
    if c.share is None or c.share <= SHARE_EXPLAINED_ABOVE or evidence is None:
        return ""
    step, total = evidence.effect, None if repro is None else repro.effect
    if step is None or total is None:
        return ""
    levels = ""
    good, bad = doc.good, doc.bad
    if evidence.relative_effect and good and bad and good.value is not None and bad.value:
        parent = step / evidence.relative_effect  # `relative_effect` is over the parent's median
        levels = (
            f" (its parent {parent:.3f} against the good end's {good.value:.3f}, "
            f"it {parent + step:.3f} against the bad end's {bad.value:.3f})"
        )
    return (
        f"share {percent(c.share, signed=False, digits=0)}: this step alone moves {doc.metric} by {step:+.3f}, more "
        f"than the whole range does ({total:+.3f}): other commits move it back the better way, "
        f"an improvement before this step or a later commit taking part of it back{levels}; "
        "improvements are not bisected"
    )
