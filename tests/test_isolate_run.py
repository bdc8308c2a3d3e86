"""Isolation inside the culprit commit, end to end on generated repositories (venv, sim mode)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bisector.document import RunDocument
from bisector.engine.pipeline import RunRequest, run_bisection
from bisector.isolate.run import isolate_files
from bisector.ports import PhaseStarted, Progress, ProgressEvent
from bisector.report.files import render_markdown
from bisector.testing.sample import SampleRepo
from bisector.testing.wheels import make_wheel
from tests.conftest import run_cli

SPEC: dict[str, Any] = {
    "n_commits": 8,
    "culprit": 5,
    "builder": "venv",
    "repeats": (3, 8),
    "noise": 0.03,
}


def _run(repo: SampleRepo, progress: Progress | None = None) -> dict[str, Any]:
    req = RunRequest(good="v2.3.0", bad="v2.4.0", repo=repo.path)
    outcome = run_bisection(req, progress) if progress else run_bisection(req)
    doc = outcome.document.to_json()
    assert doc["status"] == "found"
    assert doc["culprit"]["commit"] == repo.culprit
    return doc


def _all_verified(doc: dict[str, Any]) -> None:
    items = doc["isolation"]["verification"]
    assert items and all(v["verified"] for v in items)
    for v in items:
        assert v["reverted"]["passed"] and v["reverted"]["relative_effect"] < 0
        assert v["applied"]["passed"] and v["applied"]["relative_effect"] > 0
        assert v["applied"]["confidence"] >= 0.95


@pytest.mark.slow
def test_three_upgrades_one_slow_names_the_slow_package_and_its_first_bad_version(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """Of three upgrades only fastpad 1.0.0 -> 1.3.0 is named, narrowed to first bad 1.2.0."""
    repo = make_sample(kind="dependency", culprit_deps="three", **SPEC)
    doc = _run(repo)
    isolate_dir = repo.path / ".bisector" / "isolate"
    assert not isolate_dir.exists() or not any(isolate_dir.iterdir())  # states cleaned up
    culprit = doc["culprit"]
    assert culprit["kind"] == "dependency"
    assert [(d["name"], d["from"], d["to"]) for d in culprit["dependencies"]] == [
        ("fastpad", "1.0.0", "1.3.0")
    ]
    assert culprit["dependencies"][0]["first_bad"] == "1.2.0"  # the contract's name
    assert culprit["dependencies"][0]["first_bad_version"] == "1.2.0"
    assert culprit["dependencies"][0]["verified"] is True
    assert culprit["config_keys"] == []
    assert {c["name"] for c in doc["isolation"]["changes"]} == {"fastpad", "quickjson", "tracelite"}
    _all_verified(doc)
    md = render_markdown(RunDocument.from_json(doc))
    assert "## Isolation" in md and "first bad version of `fastpad`: **1.2.0**" in md
    report = json.loads((Path(doc["report"]).parent / "report.json").read_text())
    assert report["isolation"]["first_bad_versions"] == {"fastpad": "1.2.0"}


@pytest.mark.slow
def test_three_config_keys_one_slow_names_only_that_key(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """Of three changed config keys only batching.pad_to_target is named."""
    repo = make_sample(kind="config", culprit_keys="three", **SPEC)
    doc = _run(repo)
    assert doc["culprit"]["kind"] == "config"
    assert doc["culprit"]["config_keys"] == ["batching.pad_to_target"]
    assert doc["culprit"]["dependencies"] == []
    keys = {c["key"] for c in doc["isolation"]["changes"]}
    assert keys == {"batching.pad_to_target", "server.port", "logging.format"}
    _all_verified(doc)


@pytest.mark.slow
def test_pair_slow_only_together_is_reported_as_the_pair(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """hotpath and coldpath, slow only together, come back as that pair and not quickjson."""
    repo = make_sample(kind="dependency", culprit_deps="pair", **SPEC)
    doc = _run(repo)
    deps = doc["culprit"]["dependencies"]
    assert sorted(d["name"] for d in deps) == ["coldpath", "hotpath"]
    assert all("only_together_with" in d for d in deps)
    assert doc["culprit"]["kind"] == "dependency"
    _all_verified(doc)


@pytest.mark.slow
def test_culprit_whose_effect_vanishes_on_remeasurement_is_labelled_unverified(
    make_sample: Callable[..., SampleRepo],
    tmp_path: Path,
) -> None:
    """When the effect is gone by verification time, the key is named but marked unverified."""
    flag = tmp_path / "effect-flag"
    repo = make_sample(kind="config", culprit_keys="three", effect_flag=str(flag), **SPEC)

    def progress(event: ProgressEvent) -> None:
        if event == PhaseStarted("verify-isolation"):
            flag.write_text("off")

    doc = _run(repo, progress)
    assert doc["culprit"]["config_keys"] == ["batching.pad_to_target"]
    assert doc["culprit"]["items_verified"] is False
    (item,) = doc["isolation"]["verification"]
    assert item["verified"] is False and "unverified" in item["note"]
    assert doc["verification"]["items"][0]["verified"] is False
    assert "UNVERIFIED" in render_markdown(RunDocument.from_json(doc))


@pytest.mark.slow
def test_standalone_deps_names_the_slow_package(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """`bisector deps` on HEAD's code with two requirement files names fastpad, first bad 1.2.0."""
    repo = make_sample(kind="code", **SPEC)
    good = tmp_path / "good.txt"
    bad = tmp_path / "bad.txt"
    good.write_text("fastpad==1.0.0\nservekit==1.0.0\ntokenkit==2.2.0\n")
    bad.write_text("fastpad==1.3.0\nservekit==1.0.0\ntokenkit==2.2.0\n")
    proc = run_cli(
        "deps", "--good-lock", str(good), "--bad-lock", str(bad), "--repo", str(repo.path), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "found"
    (dep,) = doc["culprit"]["dependencies"]
    assert (dep["name"], dep["from"], dep["to"], dep["first_bad_version"]) == (
        "fastpad",
        "1.0.0",
        "1.3.0",
        "1.2.0",
    )
    assert dep["verified"] is True
    # Both sides run HEAD's code: the states are named by side, not "culprit code + ..."
    states = [s["state"] for s in doc["isolation"]["steps"]]
    (check,) = doc["isolation"]["verification"]
    assert (check["reverted"]["state"], check["applied"]["state"]) == ("good side", "bad side")
    assert "bad side; fastpad==1.2.0" in states
    # The code alone is the good side itself: not measured, not judged against itself.
    assert doc["isolation"]["code_alone"] is None
    assert "isolate-code" not in [s["phase"] for s in doc["isolation"]["steps"]]
    shown = [line for line in proc.stderr.splitlines() if line.startswith(("[step", "    "))]
    assert "    bad side; fastpad==1.2.0: bad after" in "\n".join(shown)
    assert shown and not any(" code + " in line for line in shown), shown
    # Steps are named in words, not by their JSON phase names
    assert not any("isolate-" in line for line in shown), shown
    assert any(line.startswith("[step") and "] package version: " in line for line in shown), shown


@pytest.mark.slow
def test_standalone_deps_names_the_side_that_did_not_build_and_retries_it_when_fixed(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """A `--bad-lock` needing a package no index has stops with the side and the build log
    (it said "a reference state cannot be measured", a hint about the benchmark), and once
    the package is there the same command builds it (the failed build was replayed)."""
    repo = make_sample(kind="code", **SPEC)
    assert repo.wheelhouse is not None
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("fastpad==1.0.0\nservekit==1.0.0\ntokenkit==2.2.0\n")
    bad.write_text("fastpad==1.0.0\nservekit==1.0.0\ntokenkit==2.2.0\nlatebloomer==1.0\n")
    args = ("deps", "--good-lock", str(good), "--bad-lock", str(bad), "--repo", str(repo.path))
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error == (
        f"error: isolation stopped: the bad side (--bad-lock {bad}) could not be measured: "
        "its environment did not build"
    )
    (hint,) = [line for line in proc.stderr.splitlines() if line.startswith("hint:")]
    assert hint.startswith(f"hint: see {repo.path / '.bisector' / 'logs' / 'build'}/venv-")
    assert "Traceback" not in proc.stderr
    make_wheel(repo.wheelhouse, "latebloomer", "1.0", {"latebloomer/__init__.py": ""})
    proc = run_cli(*args)
    assert proc.returncode == 3, proc.stderr  # built and measured: it changes nothing
    assert "not reproduced" in proc.stderr


@pytest.mark.slow
def test_standalone_config_names_the_slow_key(
    make_sample: Callable[..., SampleRepo], tmp_path: Path
) -> None:
    """`bisector config --good --bad` names the one slow key of two changed ones."""
    repo = make_sample(kind="dependency", **SPEC)  # HEAD's code does not pad by itself
    head = (repo.path / "configs/serving.yaml").read_text()
    bad = tmp_path / "serving.yaml"
    bad.write_text(
        head.replace("pad_to_target: false", "pad_to_target: true").replace(
            "level: info", "level: debug"
        )
    )
    proc = run_cli(
        "config",
        "--good",
        str(repo.path / "configs/serving.yaml"),
        "--bad",
        str(bad),
        "--target",
        "configs/serving.yaml",
        "--repo",
        str(repo.path),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["culprit"]["config_keys"] == ["batching.pad_to_target"]
    check = run_cli("config", "check", "--repo", str(repo.path))
    assert check.returncode == 0, check.stderr


def test_standalone_without_a_difference_is_not_reproduced(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """Two equal config files give status not_reproduced and no culprit."""
    repo = make_sample(kind="code", **SPEC)
    same = (repo.path / "configs/serving.yaml").read_bytes()
    doc = isolate_files(
        repo=repo.path,
        config=None,
        metric=None,
        good={"configs/serving.yaml": same},
        bad={"configs/serving.yaml": same},
        what="config",
    )
    assert doc["status"] == "not_reproduced" and doc["culprit"] is None
    with sqlite3.connect(repo.path / ".bisector" / "journal.sqlite") as db:
        (status,) = db.execute("SELECT status FROM runs WHERE id = ?", (doc["run_id"],)).fetchone()
    assert status == "not_reproduced"  # ended, not left `running`


@pytest.mark.slow
def test_three_upgrades_in_pyproject_name_only_the_slow_package(
    make_sample: Callable[..., SampleRepo],
) -> None:
    """With the pins in pyproject.toml, fastpad 1.0.0 -> 1.3.0 is named, the two others not."""
    repo = make_sample(kind="dependency", culprit_deps="three", deps_file="pyproject", **SPEC)
    assert not (repo.path / "requirements.txt").exists()
    doc = _run(repo)
    culprit = doc["culprit"]
    assert culprit["kind"] == "dependency"
    assert [(d["name"], d["from"], d["to"]) for d in culprit["dependencies"]] == [
        ("fastpad", "1.0.0", "1.3.0")
    ]
    assert culprit["dependencies"][0]["first_bad"] == "1.2.0"  # the contract's name
    assert culprit["dependencies"][0]["first_bad_version"] == "1.2.0"
    assert culprit["dependencies"][0]["verified"] is True
    assert doc["isolation"]["grouped"] == []
    assert {c["name"] for c in doc["isolation"]["changes"]} == {"fastpad", "quickjson", "tracelite"}
    assert all(s["verdict"] != "skip" for s in doc["isolation"]["steps"])
