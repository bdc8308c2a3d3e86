"""The run document: stored JSON reads back into the same JSON; older documents still read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bisector.config import Benchmark, Config, Metric
from bisector.core.types import Direction, Status
from bisector.document import Isolation, RunDocument, RunOptions
from bisector.engine.pipeline import bench_key
from bisector.report.files import contract_view, render_markdown, stored_document
from bisector.store.journal import Journal, TrialRow

GOOD, BAD, PARENT, CULPRIT = "a" * 40, "b" * 40, "c" * 40, "d" * 40
REPRO = {
    "p_value": 0.002,
    "effect": 6.4,
    "ci": [6.0, None],
    "relative_effect": 0.32,
    "significant": True,
    "regressed": True,
}
CHECK = {
    "state": "parent code + fastpad",
    "expect": "regressed",
    "passed": True,
    "effect": 6.4,
    "relative_effect": 0.32,
    "p_value": 0.008,
    "confidence": 0.99,
    "samples": 5,
}
ITEM = {
    "item": "fastpad 1.0.0 → 1.3.0",
    "kind": "dependency",
    "name": "fastpad",
    "reverted": CHECK,
    "applied": CHECK,
    "verified": True,
}


def found() -> dict[str, Any]:
    """A found run's document as the pipeline stored it (key order included)."""
    return {
        "status": "found",
        "metric": "latency_ms",
        "good": {"ref": "v2.3.0", "commit": GOOD, "value": 20.08},
        "bad": {"ref": "v2.4.0", "commit": BAD, "value": 26.5},
        "culprit": {
            "commit": CULPRIT,
            "subject": "Upgrade fastpad",
            "kind": "dependency",
            "dependencies": [
                {
                    "name": "fastpad",
                    "from": "1.0.0",
                    "to": "1.3.0",
                    "first_bad": "1.2.0",
                    "first_bad_version": "1.2.0",
                    "verified": True,
                },
                {
                    "name": "hotpath",
                    "from": None,
                    "to": "2.0",
                    "grouped": True,
                    "only_together_with": ["coldpath 1 → 2"],
                    "verified": False,
                },
            ],
            "config_keys": ["batching.pad_to_target"],
            "effect": 0.28,
            "confidence": 0.9921,
            "verified": True,
            "items_verified": False,
        },
        "range": {"last_good": PARENT, "first_bad": CULPRIT, "untestable": ["e" * 40]},
        "steps": [
            {
                "commit": GOOD,
                "verdict": "good",
                "samples": 6,
                "median": 20.08,
                "phase": "reproduce",
            },
            {"commit": "e" * 40, "verdict": "skip", "samples": 0, "median": None, "phase": "fine"},
        ],
        "details": {
            "reproduction": REPRO,
            "culprit_commit": {
                "author": "Sample Dev <dev@example.org>",
                "date": "2026-01-02T03:00:00+00:00",
                "diffstat": " requirements.txt | 2 +-",
                "parent": PARENT,
            },
        },
        "verification": {
            **REPRO,
            "verified": True,
            "confidence": 0.9921,
            "note": "the regression reappears",
            "items": [ITEM],
        },
        "isolation": {
            "kind": "dependency",
            "code_alone": "good",
            "changes": [
                {
                    "name": "fastpad",
                    "from": "1.0.0",
                    "to": "1.3.0",
                    "change": "upgraded",
                    "kind": "dependency",
                }
            ],
            "culprits": [
                {
                    "name": "fastpad",
                    "from": "1.0.0",
                    "to": "1.3.0",
                    "change": "upgraded",
                    "kind": "dependency",
                }
            ],
            "grouped": [],
            "interacting": [],
            "first_bad_versions": {"fastpad": "1.2.0"},
            "versions_tried": {"fastpad": ["1.0.0", "1.2.0", "1.3.0"]},
            "steps": [
                {"phase": "isolate-code", "state": "culprit code + no changes", "verdict": "good"}
            ],
            "verification": [ITEM],
            "notes": ["a note"],
        },
        "run_id": "20260102-030000-abcdef01",
        "measurements": 42,
        "wall_s": 12.5,
        "report": "/r/report.html",
    }


def variants() -> dict[str, dict[str, Any]]:
    unverified = found()
    unverified["verification"] = {
        "verified": False,
        "note": "could not be re-measured",
        "confidence": 0.0,
        "relative_effect": None,
    }
    unverified["culprit"] |= {"effect": None, "confidence": 0.0, "verified": False}
    del unverified["culprit"]["items_verified"]
    unverified["isolation"] = {"error": "git show failed"}
    inconclusive = {k: v for k, v in found().items() if k not in ("verification", "isolation")}
    inconclusive |= {
        "status": "inconclusive",
        "culprit": None,
        "details": {"reproduction": REPRO, "candidates": [PARENT, CULPRIT]},
    }
    current = found() | {
        "rollback": {"to": "v2.3.0", "status": "applied"},
        "options": {"builder": "venv", "all_commits": True, "jobs": 2},
        "bench_key": "0123abcd",
        "reused": {"trials": 12, "builder": "venv", "runs": {"20260101-000000-abcdef01": 12}},
    }
    current["culprit"] = current["culprit"] | {"evidence": REPRO, "trials": 6}
    # A ray run over two node types: each type's trials, each step's type.
    fingerprint = {"gpu": "", "driver": "", "cuda": "", "cpu": "EPYC"}
    mixed = copy.deepcopy(current) | {
        "node_types": [
            {
                "node_type": t,
                "bench_key": f"0123abcd+fp-{t}",
                "fingerprint": fingerprint | {"node_type": t},
                "trials": n,
                "reused": 0,
            }
            for t, n in (("type_a", 30), ("type_b", 12))
        ]
    }
    for step, on in zip(mixed["steps"], ("type_a", "type_b"), strict=True):
        step["node_type"] = on
    return {
        "found": found(),
        "unverified": unverified,
        "inconclusive": inconclusive,
        "current": current,
        "mixed_ray": mixed,
    }


@pytest.mark.parametrize("name", sorted(variants()))
def test_stored_documents_read_back_into_the_same_json(name: str) -> None:
    """Every shape the pipeline stores reads back into the same keys, values and key order."""
    data = variants()[name]
    kept = copy.deepcopy(data)
    doc = RunDocument.from_json(data)
    assert json.dumps(doc.to_json()) == json.dumps(kept)
    assert data == kept  # reading does not touch the stored dict


def test_typed_fields_of_a_stored_document() -> None:
    """The typed view names what the JSON says: culprit items, verification, isolation, options."""
    doc = RunDocument.from_json(variants()["current"])
    assert doc.status is Status.FOUND and doc.culprit is not None
    assert [(d.name, d.first_bad_version, d.verified) for d in doc.culprit.dependencies] == [
        ("fastpad", "1.2.0", True),
        ("hotpath", None, False),
    ]
    assert doc.verification is not None and doc.verification.relative_effect == 0.32
    assert doc.details.reproduction is not None and doc.details.reproduction.ci == (6.0, None)
    assert doc.options == RunOptions("venv", True, 2) and doc.bench_key == "0123abcd"
    assert RunDocument.from_json(variants()["unverified"]).isolation == Isolation.failed(
        "git show failed"
    )


def test_contract_view_adds_only_options_bench_key_and_reuse() -> None:
    """`--json` of an earlier document keeps its keys in their order; options, the bench key and the reuse come last."""
    view = contract_view(RunDocument.from_json(variants()["current"]))
    assert list(view) == [
        "status",
        "metric",
        "good",
        "bad",
        "culprit",
        "range",
        "steps",
        "measurements",
        "wall_s",
        "report",
        "run_id",
        "verification",
        "isolation",
        "details",
        "rollback",
        "options",
        "bench_key",
        "reused",
    ]


def steps_found() -> dict[str, Any]:
    """An inconclusive run of today: one verified step, an unverified suspect, unclear commits, noise."""
    culprit: dict[str, Any] = {}
    for key, value in found()["culprit"].items():
        if key != "items_verified":
            culprit[key] = value
        if key == "effect":
            culprit["share"] = 0.5
    suspect = culprit | {
        "commit": "f" * 40,
        "verified": False,
        "effect": -0.02,
        "confidence": 0.3,
        "evidence": REPRO | {"regressed": False},
        "note": "not a culprit (unverified)",
    }
    del suspect["share"]
    doc = {k: v for k, v in found().items() if k not in ("verification", "isolation")}
    doc |= {"status": "inconclusive", "culprit": None}
    ordered: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "range":
            ordered |= {"culprits": [culprit], "suspect": suspect}
        ordered[key] = value
        if key == "range":
            ordered["range"] = value | {"unclear": ["9" * 40]}
            ordered["noise"] = {
                "between_process_cv": 0.03,
                "within_process_cv": 0.01,
                "endpoint_drift": 0.004,
                "good": {"between_process_cv": 0.03},
                "bad": {"between_process_cv": 0.02},
                "warning": None,
            }
    return ordered


def test_culprits_suspect_unclear_and_noise_read_back_and_lead_the_contract() -> None:
    """Today's keys (culprits, suspect, range.unclear, noise) read back and sit where the contract has them."""
    data = steps_found()
    doc = RunDocument.from_json(copy.deepcopy(data))
    assert json.dumps(doc.to_json()) == json.dumps(data)
    assert doc.suspect is not None and doc.suspect.evidence is not None and not doc.suspect.verified
    assert doc.range is not None and doc.range.unclear == ("9" * 40,)
    assert list(contract_view(doc))[:10] == [
        "status",
        "metric",
        "good",
        "bad",
        "culprit",
        "culprits",
        "suspect",
        "range",
        "noise",
        "steps",
    ]
    md = render_markdown(doc)
    assert "Suspect" in md and "unclear: `9999999999`" in md and "Between-process spread 3.0%" in md


def test_a_document_of_an_earlier_version_with_keys_missing_still_reads_and_renders() -> None:
    """A sparse old document (no options, bench key, range or details) reads with defaults and renders."""
    old = {
        "status": "not_reproduced",
        "metric": "latency_ms",
        "good": {"ref": "v1", "commit": GOOD, "value": 1.0},
        "bad": {"ref": "v2", "commit": BAD, "value": 1.01},
        "culprit": None,
        "steps": [],
    }
    doc = RunDocument.from_json(old, options={"builder": "local", "all_commits": True, "jobs": 2})
    assert doc.options == RunOptions("local", True, 2) and doc.bench_key is None
    assert doc.range is None and doc.details.reproduction is None and doc.run_id is None
    assert "**Status:** `not_reproduced`" in render_markdown(doc)


def test_report_of_an_earlier_document_takes_options_and_bench_key_from_the_journal(
    tmp_path: Path,
) -> None:
    """A stored document without options or bench key gets the run row's options and its trials' key."""
    cfg = Config(
        benchmark=Benchmark(command=["python", "bench.py", "--edited"]),
        metrics={"latency_ms": Metric(direction=Direction.LOWER)},
    )
    with Journal(tmp_path / "store") as journal:
        for n, key in enumerate(("k-old-run", None)):
            run, _ = journal.open_run(
                key=f"key{n}",
                good_ref="v1",
                bad_ref="v2",
                good_sha=GOOD,
                bad_sha=BAD,
                metric="latency_ms",
                options={"builder": "local", "all_commits": True, "jobs": 3},
                fresh=False,
            )
            if key is not None:
                journal.add_trial(
                    TrialRow(
                        commit_sha=GOOD,
                        env_key="local",
                        bench_key=key,
                        status="ok",
                        metrics={"latency_ms": (1.0,)},
                        meta={},
                        run_id=run.id,
                    )
                )
            old = {k: v for k, v in found().items() if k != "run_id"}
            journal.finish_run(run.id, "found", old)
            doc = stored_document(journal, run.id, cfg)
            assert doc.options == RunOptions("local", True, 3)
            # No trials of its own: the current config's key, as earlier versions did.
            assert doc.bench_key == (key or bench_key(cfg))


def test_a_mixed_ray_documents_markdown_lists_each_node_type_and_each_steps_type() -> None:
    """The Markdown of a run over two node types has a row per type with its trials, and the
    type each step was judged on; a local run's has neither."""
    markdown = render_markdown(RunDocument.from_json(variants()["mixed_ray"]))
    assert "## Node types" in markdown
    assert "| `type_a` | – | EPYC | 30 | 0 | `0123abcd+fp-type_a` |" in markdown
    assert "| `type_b` | – | EPYC | 12 | 0 | `0123abcd+fp-type_b` |" in markdown
    assert "| # | phase | commit | node type | verdict | trials | median |" in markdown
    assert f"| reproduce | `{GOOD[:10]}` | `type_a` | good endpoint |" in markdown
    assert f"| fine | `{'e' * 10}` | `type_b` | skip |" in markdown
    local = render_markdown(RunDocument.from_json(variants()["current"]))
    assert "Node types" not in local and "node type" not in local
