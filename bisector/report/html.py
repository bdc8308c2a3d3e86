"""The single-file HTML report of a run: the range plot as inline SVG (one mark per trial,
so a page can be checked), the distributions as a base64 PNG, no network.

`collect` reads what the plots need (this run's trials from the journal, the candidate
range from git, the snapshot diff of the endpoints); `render_html` is pure over that data;
the template autoescapes everything, since commit subjects and config values are
untrusted, and writes every value it shows through `plumbing.escape.visible`, as the
Markdown report and the terminal do: a control character or a bidi override in a subject
is shown as `\\x1b` / `\\u202e`, never reorders or hides the page's text (the SVG is
inlined as is: matplotlib escapes the text it writes, and its only text is the metric's
name and the node types' names, both made visible first, short commit ids and the
legend).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from bisector.config import Config
from bisector.core.types import Status
from bisector.document import RunDocument
from bisector.errors import BisectorError
from bisector.gitrepo import GitRepo
from bisector.log import get_logger
from bisector.plumbing.escape import visible
from bisector.report.files import atomic_write_text, contract_view
from bisector.report.plots import RangePoint, distribution_plot, range_svg
from bisector.report.wording import moved_the_other_way, percent, share_note
from bisector.store.journal import Journal, TrialRow
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
    trials: Mapping[str, int] = field(default_factory=dict)  # own / reused trials shown
    types: tuple[str, ...] = ()  # a run over several node types: their names, in order
    endpoint_trials: Mapping[str, int] = field(default_factory=dict)  # good/bad -> trials
    node_rows: tuple[Mapping[str, Any], ...] = ()  # each node type: trials, endpoint medians


def _process_medians(samples: Sequence[Sequence[float]]) -> tuple[float, ...]:
    out = []
    for s in samples:
        ordered = sorted(s)
        out.append(ordered[len(ordered) // 2])
    return tuple(out)


def run_keys(doc: RunDocument) -> tuple[str, ...]:
    """The benchmark keys of the run's trials: one a node type on the ray executor."""
    return tuple(t.bench_key for t in doc.node_types or ()) or (doc.bench_key or "",)


def run_trials(
    doc: RunDocument, journal: Journal, commits: Sequence[str]
) -> dict[str, list[TrialRow]]:
    """This run's trials of `commits`, in the order taken: its own, and those it reused from
    earlier runs (`reused`: the same builder and benchmark) on commits it judged, on every
    node type of the run. Never another builder's, another benchmark's or hardware's, or a
    run's it did not read."""
    own = doc.run_id or ""
    judged = {s.commit for s in doc.steps}
    reused = set(doc.reused.runs) if doc.reused is not None else set()
    return {
        sha: [
            t
            for t in journal.commit_trials(sha, *run_keys(doc))
            if t.run_id == own or (t.run_id in reused and sha in judged)
        ]
        for sha in dict.fromkeys(commits)
    }


def _samples(
    trials: Mapping[str, Sequence[TrialRow]], sha: str, metric: str, key: str | None = None
) -> list[list[float]]:
    """Per trial, the samples of `metric` (of the trials under `key` only, when given)."""
    return [
        list(t.metrics[metric])
        for t in trials.get(sha, ())
        if t.status == "ok" and t.metrics.get(metric) and key in (None, t.bench_key)
    ]


def _trials_behind(
    doc: RunDocument, role: str, trials: Mapping[str, Sequence[TrialRow]], sha: str, metric: str
) -> int:
    """The trials behind an end's median, as the terminal counts them: the run's
    (`noise.<end>.processes`), else (documents from before) the journal's of that commit."""
    noise = None if doc.noise is None else getattr(doc.noise, role)
    processes = None if noise is None else noise.get("processes")
    return processes if isinstance(processes, int) else len(_samples(trials, sha, metric))


def _median(values: Sequence[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def _gpu_of(trials: Sequence[TrialRow]) -> Mapping[str, Any] | None:
    for t in reversed(trials):
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

    Only this run's trials (`run_trials`). The benchmark key and the walk (first-parent or
    `--all-commits`) are the run's own, from the document: the current config may have
    changed since the run.
    """
    metric = doc.metric
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
    parent = doc.details.culprit_commit.parent if doc.details.culprit_commit else ""
    trials = run_trials(doc, journal, [sha for sha, _ in order] + ([parent] if parent else []))
    keys = run_keys(doc)
    # Over several node types each kind of machine is its own series (never pooled).
    kinds = keys if len(keys) > 1 else (None,)
    points = tuple(
        RangePoint(
            i,
            label,
            verdicts.get(sha),
            tuple(m for key in kinds for m in _process_medians(_samples(trials, sha, metric, key))),
            tuple(k for k, key in enumerate(kinds) for _ in _samples(trials, sha, metric, key)),
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
    names = tuple(t.name for t in doc.node_types or ()) if len(keys) > 1 else ("",)
    groups = {
        role + (f" ({name})" if name else ""): tuple(
            x for s in _samples(trials, sha, metric, key) for x in s
        )
        for role, sha in roles.items()
        if sha
        for key, name in zip(kinds, names, strict=True)
    }
    endpoint_trials = {
        role: _trials_behind(doc, role, trials, sha, metric)
        for role, sha in roles.items()
        if role in ("good", "bad")
    }
    gpu = {role: g for role, sha in roles.items() if sha and (g := _gpu_of(trials.get(sha, ())))}
    plotted = [
        t
        for sha, _ in order
        for t in trials.get(sha, ())
        if t.status == "ok" and t.metrics.get(metric)
    ]
    own = sum(1 for t in plotted if t.run_id == doc.run_id)
    counts = {"own": own, "reused": len(plotted) - own}
    node_rows = tuple(
        {
            **t.to_json(),
            "name": t.name,
            **{
                role: _median(_process_medians(_samples(trials, roles[role], metric, t.bench_key)))
                for role in ("good", "bad")
            },
        }
        for t in doc.node_types or ()
    )
    types = names if len(keys) > 1 else ()
    return ReportData(
        points, culprit_index, groups, diff, gpu, counts, types, endpoint_trials, node_rows
    )


def badge(doc: RunDocument) -> tuple[str, str]:
    """The status badge: its CSS class and words that say what the status says."""
    found = doc.culprits or ((doc.culprit,) if doc.culprit is not None else ())
    if doc.status is Status.FOUND:
        if len(found) > 1:
            return "found", f"found: {len(found)} culprits"
        return "found", "found" + (f": culprit {found[0].commit[:10]}" if found else "")
    if doc.status is Status.INCONCLUSIVE:
        if doc.suspect is not None:
            return "suspect", f"inconclusive: suspect {doc.suspect.commit[:10]} (unverified)"
        if found:
            steps = "step" if len(found) == 1 else "steps"
            return "inconclusive", f"inconclusive: {len(found)} verified {steps}, a range open"
        return "inconclusive", "inconclusive: a range, no culprit"
    return "not_reproduced", "not reproduced"


def verification_rows(doc: RunDocument) -> list[dict[str, Any]]:
    """Each culprit's (or the suspect's) verification: fresh trials, effect, p."""
    named = list(doc.culprits or ((doc.culprit,) if doc.culprit is not None else ()))
    if doc.suspect is not None:
        named.append(doc.suspect)
    rows = []
    for c in named:
        evidence = c.evidence
        if evidence is None and doc.verification is not None and c.commit in _main(doc):
            evidence = doc.verification.comparison  # documents from before per-culprit evidence
        rows.append(
            {
                "commit": c.commit,
                "subject": c.subject,
                "verified": c.verified,
                "trials": c.trials,
                "relative_effect": None if evidence is None else evidence.relative_effect,
                "effect": None if evidence is None else evidence.effect,
                "p_value": None if evidence is None else evidence.p_value,
                "note": c.note or (_main_note(doc) if c.commit in _main(doc) else ""),
            }
        )
    return rows


def _main(doc: RunDocument) -> set[str]:
    """The commit `verification` is about: the culprit, else the suspect."""
    named = doc.culprit or doc.suspect
    return set() if named is None else {named.commit}


def _main_note(doc: RunDocument) -> str:
    return "" if doc.verification is None else doc.verification.note


def _literal(value: Any) -> str:
    """A version or config value as written in its file: `1.2.0`, `true`, `null` (a key
    that is absent on one side: `(absent)`)."""
    if value is None:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _visible(value: Any) -> Any:
    """Every value the template prints, as `visible` writes it (before autoescaping):
    numbers as they are, the inlined SVG (`Markup`, made by us) untouched."""
    if isinstance(value, markupsafe.Markup | int | float):
        return value
    return visible(value if isinstance(value, str) else str(value))


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(doc: RunDocument, data: ReportData) -> str:
    """The page, as one string (offline: no scripts, fonts or images from anywhere)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATE.parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_visible,
    )
    env.filters["literal"] = _literal
    env.filters["percent"] = percent  # `x|percent`: the terminal's and Markdown's format
    metric = doc.metric
    images = []
    svg = (
        range_svg(data.points, visible(metric), data.culprit_index, tuple(map(visible, data.types)))
        if any(p.medians for p in data.points)
        else None
    )
    if any(data.groups.values()):
        images.append(("Distributions", _data_uri(distribution_plot(data.groups, metric))))
    return env.get_template(_TEMPLATE.name).render(
        doc=contract_view(doc),
        details=doc.details.to_json(),
        images=images,
        range_svg=markupsafe.Markup(svg) if svg else None,
        trials=data.trials,
        badge=badge(doc),
        verifications=verification_rows(doc),
        share_notes={c.commit: share_note(doc, c) for c in doc.culprits or ()},
        suspect_moved_the_other_way=doc.suspect is not None and moved_the_other_way(doc.suspect),
        diff=data.diff,
        gpu=data.gpu,
        endpoint_trials=data.endpoint_trials,
        node_rows=data.node_rows,
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
