"""The hunt's findings (`core.hunt`) as the run document's types (`bisector.document`).

Pure conversions, kept apart from the pipeline so it reads as the order of a run.
"""

from __future__ import annotations

from dataclasses import asdict, replace

from bisector.core import judge
from bisector.core.hunt import Found
from bisector.core.noise import Noise
from bisector.core.types import Commit
from bisector.document import Comparison, Culprit, NoiseReport, RunDocument, Verification


def with_suspect(doc: RunDocument, commit: Commit, suspect: Found) -> RunDocument:
    """`doc` naming the unverified candidate as its `suspect`, with the evidence it has."""
    return replace(
        doc,
        verification=verification_of(suspect),
        suspect=replace(
            culprit_of(commit, suspect),
            evidence=None if suspect.evidence is None else comparison_of(suspect.evidence),
            note=suspect.note,
        ),
    )


def culprit_of(commit: Commit, found: Found) -> Culprit:
    return Culprit(
        commit=commit.sha,
        subject=commit.subject,
        kind="code",
        effect=found.effect,
        confidence=found.confidence,
        verified=found.verified,
        share=found.share,
        # each culprit's own verification (the report shows every one, not only the largest)
        evidence=None if found.evidence is None else comparison_of(found.evidence),
        trials=found.trials,
    )


def verification_of(found: Found) -> Verification:
    return Verification(
        verified=found.verified,
        confidence=found.confidence,
        note=found.note,
        comparison=None if found.evidence is None else comparison_of(found.evidence),
    )


def noise_report(noise: Noise) -> NoiseReport:
    return NoiseReport(
        noise.between_process_cv,
        noise.within_process_cv,
        noise.endpoint_drift,
        good=asdict(noise.good),
        bad=asdict(noise.bad),
        warning=noise.warning,
    )


def comparison_of(comp: judge.Comparison) -> Comparison:
    return Comparison.of(
        p_value=comp.p_value,
        effect=comp.effect,
        ci=comp.ci,
        relative_effect=comp.relative_effect,
        significant=comp.significant,
        regressed=comp.regressed,
    )


def median_of(samples: list[list[float]]) -> float | None:
    med = sorted(judge.process_medians(samples)) if samples else []
    if not med:
        return None
    mid = len(med) // 2
    return med[mid] if len(med) % 2 else (med[mid - 1] + med[mid]) / 2
