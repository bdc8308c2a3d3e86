"""The single-file HTML report of a run: plots embedded as base64 PNGs, no network.

`collect` reads what the plots need (samples from the journal, the candidate range from
git, the snapshot diff of the endpoints); `render_html` is pure over that data; the
template autoescapes everything, since commit subjects and config values are untrusted.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from bisector.config import Config
from bisector.document import RunDocument
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.log import get_logger
from bisector.report.files import atomic_write_text, contract_view
from bisector.report.plots import RangePoint, distribution_plot, range_plot
from bisector.store.journal import Journal
from snapshots import api as snap_api

log = get_logger("bisector.report.files")

_TEMPLATE = Path(__file__).with_name("template.html.j2")


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows besides the run document itself."""

    points: tuple[RangePoint, ...] = ()
    culprit_index: int | None = None
    groups: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    diff: Mapping[str, Any] | None = None
    gpu: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _process_medians(samples: Sequence[Sequence[float]]) -> tuple[float, ...]:
    out = []
    for s in samples:
        ordered = sorted(s)
        out.append(ordered[len(ordered) // 2])
    return tuple(out)


def _samples(journal: Journal, sha: str, bench_key: str, metric: str) -> list[list[float]]:
    return [
        list(t.metrics[metric])
        for t in journal.commit_trials(sha, bench_key)
        if t.status == "ok" and t.metrics.get(metric)
    ]


def _gpu_of(journal: Journal, sha: str, bench_key: str) -> Mapping[str, Any] | None:
    for t in reversed(journal.commit_trials(sha, bench_key)):
        gpu = t.meta.get("_gpu")
        if isinstance(gpu, Mapping) and gpu:
            return gpu
        if isinstance(gpu, list) and gpu and isinstance(gpu[0], Mapping):
            return gpu[0]
    return None


def collect(
    doc: RunDocument,
    journal: Journal,
    git: GitRepo | None,
    diff: Mapping[str, Any] | None = None,
) -> ReportData:
    """Read the samples of the range, endpoints, culprit and parent (nothing is measured).

    The benchmark key and the walk (first-parent or `--all-commits`) are the run's own,
    from the document: the current config may have changed since the run.
    """
    metric, bench_key = doc.metric, doc.bench_key or ""
    good = doc.good.commit if doc.good else ""
    bad = doc.bad.commit if doc.bad else ""
    verdicts = {s.commit: s.verdict.value for s in doc.steps}
    order: list[tuple[str, str]] = [(good, "good")]
    if git is not None and good and bad:
        first_parent = not (doc.options is not None and doc.options.all_commits)
        try:
            order += [
                (c.sha, c.short) for c in git.commits_between(good, bad, first_parent=first_parent)
            ]
        except BisectorError as exc:
            log.warning("report: commit range unavailable", error=str(exc))
            order.append((bad, "bad"))
    else:
        order += [(s, s[:10]) for s in dict.fromkeys(verdicts) if s not in (good, bad)] + [
            (bad, "bad")
        ]
    points = tuple(
        RangePoint(
            i, label, verdicts.get(sha), _process_medians(_samples(journal, sha, bench_key, metric))
        )
        for i, (sha, label) in enumerate(order)
    )
    culprit = doc.culprit.commit if doc.culprit else None
    culprit_index = next((i for i, (sha, _) in enumerate(order) if sha == culprit), None)
    roles: dict[str, str] = {"good": good}
    info = doc.details.culprit_commit
    if culprit:
        roles.update({"parent": info.parent if info else "", "culprit": culprit})
    roles["bad"] = bad
    groups = {
        role: tuple(x for s in _samples(journal, sha, bench_key, metric) for x in s)
        for role, sha in roles.items()
        if sha
    }
    gpu = {
        role: g for role, sha in roles.items() if sha and (g := _gpu_of(journal, sha, bench_key))
    }
    return ReportData(points, culprit_index, groups, diff, gpu)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(doc: RunDocument, data: ReportData) -> str:
    """The page, as one string (offline: no scripts, fonts or images from anywhere)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATE.parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    metric = doc.metric
    images = []
    if any(p.medians for p in data.points):
        images.append(
            (
                "Metric across the candidate range",
                _data_uri(range_plot(data.points, metric, data.culprit_index)),
            )
        )
    if any(data.groups.values()):
        images.append(("Distributions", _data_uri(distribution_plot(data.groups, metric))))
    return env.get_template(_TEMPLATE.name).render(
        doc=contract_view(doc),
        details=doc.details.to_json(),
        images=images,
        diff=data.diff,
        gpu=data.gpu,
        groups={k: len(v) for k, v in data.groups.items()},
    )


def snapshot_diff(repo: Path, cfg: Config, doc: RunDocument) -> Mapping[str, Any] | None:
    """The endpoints' snapshot diff, or None when the snapshots cannot be read."""
    try:
        if doc.good is None or doc.bad is None:
            raise KeyError("the document has no endpoints")
        return snap_api.diff(repo, cfg, doc.good.commit, doc.bad.commit).to_json()
    except (BisectorError, ImportError, KeyError, TypeError) as exc:
        log.warning("report: no snapshot diff", error=str(exc))
        return None


def build_html(
    doc: RunDocument, *, journal: Journal, repo: Path, cfg: Config, git: GitRepo | None
) -> str:
    """The page of `doc`; `cfg` only locates the snapshot store (for the endpoints' diff)."""
    data = collect(doc, journal, git, snapshot_diff(repo, cfg, doc))
    return render_html(doc, data)


def write_html_report(
    doc: RunDocument,
    report_dir: Path,
    *,
    journal: Journal,
    repo: Path,
    cfg: Config,
    git: GitRepo | None = None,
) -> Path:
    """Write `report_dir/report.html` atomically; returns its path."""
    path = report_dir / "report.html"
    atomic_write_text(path, build_html(doc, journal=journal, repo=repo, cfg=cfg, git=git))
    return path
