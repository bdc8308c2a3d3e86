"""The `bisector snapshot` commands end to end: output streams, JSON and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bisector.cli import main
from tests.snap_fixtures import (
    EXPECTED_CONFIGS_12,
    EXPECTED_PACKAGES_12,
    build_release_repo,
    fresh_clone,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_release_repo(tmp_path_factory.mktemp("snapcli") / "repo")


@pytest.fixture
def repo(release_repo: Path, tmp_path: Path) -> Path:
    return fresh_clone(release_repo, tmp_path / "repo")


@pytest.fixture(autouse=True)
def _wide_console_and_fresh_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rich tables fit long keys; structlog forgets the captured stderr it was bound to."""
    monkeypatch.setenv("COLUMNS", "200")
    yield
    structlog.reset_defaults()


def bisector(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0)


def test_take_list_show_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """take, list and show print JSON on stdout and tables on stderr."""
    assert bisector("snapshot", "take", "v1.0.0", "v1.2.0", "--repo", str(repo), "--json") == 0
    taken = json.loads(capsys.readouterr().out)
    assert [t["tags"] for t in taken] == [["v1.0.0"], ["v1.2.0"]]
    assert bisector("snapshot", "list", "--repo", str(repo), "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in listed] == [t["id"] for t in taken]
    assert bisector("snapshot", "show", "v1.2.0", "--repo", str(repo)) == 0
    out = capsys.readouterr()
    assert out.out == "" and "configs/serving.yaml" in out.err and "fastpad" in out.err


def test_diff_json_is_exact(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`snapshot diff --json` lists exactly the changed keys and packages (taken on the fly)."""
    assert bisector("snapshot", "diff", "v1.1.0", "v1.2.0", "--repo", str(repo), "--json") == 0
    d = json.loads(capsys.readouterr().out)
    assert [
        (c["file"], c["key"], c["change"], c["old"], c["new"]) for c in d["configs"]
    ] == EXPECTED_CONFIGS_12
    assert [
        (p["name"], p["change"], p["from"], p["to"], p["risk"]) for p in d["packages"]
    ] == EXPECTED_PACKAGES_12


def test_diff_table_on_stderr(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json the diff is a table on stderr showing risk levels."""
    assert bisector("snapshot", "diff", "v1.1.0", "v1.2.0", "--repo", str(repo)) == 0
    out = capsys.readouterr()
    assert out.out == ""
    assert "batching.dynamic" in out.err and "high" in out.err and "numpy" in out.err


@pytest.mark.parametrize(
    "args",
    [
        ("snapshot", "take", "--", "--upload-pack=touch pwned"),
        ("snapshot", "take", "v1.0.0", "no-such-tag"),
        ("snapshot", "diff", "v1.0.0", "no-such-tag"),
        ("snapshot", "show", "v1.0.0"),
    ],
)
def test_bad_refs_exit_2_with_one_error_line_and_no_store(
    repo: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    """An unsafe, unknown or unsnapshotted ref is one error line, exit 2, and no store."""
    assert bisector(*args[:2], "--repo", str(repo), *args[2:]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and len([ln for ln in err if ln.startswith("error:")]) == 1
    assert not (repo / ".bisector").exists()
    assert not (repo / "pwned").exists()


def test_tampered_store_exits_2_and_is_unchanged(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flipped byte in an object makes show and diff fail with exit 2 (and list, after
    listing); nothing is written."""
    assert bisector("snapshot", "take", "v1.0.0", "--repo", str(repo), "--json") == 0
    (taken,) = json.loads(capsys.readouterr().out)
    oid = next(c["object"] for c in taken["configs"] if c["path"] == "configs/cache.yaml")
    obj = repo / ".bisector" / "objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes().replace(b"512", b"513"))
    store = repo / ".bisector"
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    for args in (("show", "v1.0.0"), ("diff", "v1.0.0", "v1.2.0")):
        assert bisector("snapshot", *args, "--repo", str(repo)) == 2
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith(f"error: snapshot store object {oid[:12]} (configs/cache.yaml")
        assert err[1].startswith("hint: ")
    assert bisector("snapshot", "list", "--repo", str(repo)) == 2
    error, hint = capsys.readouterr().err.splitlines()[-2:]
    assert error.startswith(f"error: snapshot {taken['id'][:12]} (commit ")
    assert f"is damaged: snapshot store object {oid[:12]} (configs/cache.yaml" in error
    assert hint.startswith("hint: the store was modified outside bisector; re-take")
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


def test_subprocess_upload_pack_ref(repo: Path) -> None:
    """`python -m bisector` refuses an option-like ref with one error line and exit 2."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bisector",
            "snapshot",
            "diff",
            "--repo",
            str(repo),
            "--",
            "--upload-pack=x",
            "v1.0.0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert (
        proc.stderr.splitlines()[0]
        == "error: invalid ref '--upload-pack=x': a ref cannot start with '-'"
    )
    assert not (repo / ".bisector").exists()


def test_an_empty_index_file_reads_as_no_snapshots_and_writes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`: > .bisector/snapshots.sqlite` (a truncated index, no tables): `list` is empty,
    `show` says to take the snapshot first, neither writes; a `take` then creates the
    tables and lists it."""
    store = repo / ".bisector"
    store.mkdir()
    (store / "snapshots.sqlite").write_bytes(b"")
    assert bisector("snapshot", "list", "--repo", str(repo), "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    assert bisector("snapshot", "list", "--repo", str(repo)) == 0
    assert "error" not in capsys.readouterr().err
    assert bisector("snapshot", "show", "v1.0.0", "--repo", str(repo)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: no snapshot of v1.0.0 (") and "unreadable" not in err[0]
    assert err[1] == "hint: take it first: bisector snapshot take v1.0.0"
    assert [p.name for p in store.iterdir()] == ["snapshots.sqlite"]
    assert (store / "snapshots.sqlite").read_bytes() == b""
    assert bisector("snapshot", "take", "v1.0.0", "--repo", str(repo), "--json") == 0
    (taken,) = json.loads(capsys.readouterr().out)
    assert bisector("snapshot", "list", "--repo", str(repo), "--json") == 0
    assert [s["id"] for s in json.loads(capsys.readouterr().out)] == [taken["id"]]


def test_list_shows_every_snapshot_and_marks_the_damaged_one(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One deleted object must not hide the rest of the store: every snapshot is listed,
    the damaged one marked with its reason (table and JSON), then one `error:` line and
    exit 2, and nothing written. A re-take repairs it and `list` is clean again."""
    refs = ("v1.0.0", "v1.1.0", "v1.2.0")
    assert bisector("snapshot", "take", *refs, "--repo", str(repo), "--json") == 0
    taken = json.loads(capsys.readouterr().out)
    damaged = taken[1]
    oid = damaged["id"]  # its manifest: unlike config files, never shared with another
    (repo / ".bisector" / "objects" / oid[:2] / oid[2:]).unlink()
    store = repo / ".bisector"
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}

    assert bisector("snapshot", "list", "--repo", str(repo), "--json") == 2
    out = capsys.readouterr()
    listed = json.loads(out.out)
    assert [s["id"] for s in listed] == [t["id"] for t in taken]
    assert [s["damaged"] is None for s in listed] == [True, False, True]
    assert listed[0]["configs"] == taken[0]["configs"]  # intact ones keep every field
    mark = listed[1]
    assert (mark["commit"], mark["tags"]) == (damaged["commit"], ["v1.1.0"])
    assert f"object {oid[:12]} (" in mark["damaged"]["error"]
    assert "is missing" in mark["damaged"]["error"]
    assert damaged["commit"] in mark["damaged"]["hint"]
    errors = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"snapshot {damaged['id'][:12]} (commit " in errors[0]

    assert bisector("snapshot", "list", "--repo", str(repo)) == 2
    err = capsys.readouterr().err
    rows = {line.split()[1]: line for line in err.splitlines() if line.startswith("│")}
    assert [t["id"][:12] in rows for t in taken] == [True, True, True]
    assert "DAMAGED" in rows[damaged["id"][:12]] and "v1.1.0" in rows[damaged["id"][:12]]
    assert all(" ok " in rows[t["id"][:12]] for t in (taken[0], taken[2]))
    assert f"damaged {damaged['id'][:12]}: snapshot store object {oid[:12]}" in err
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before

    # A second damaged snapshot (a config file of its own gone): both on the error line.
    first = {c["object"] for c in taken[0]["configs"]}
    other = next(c["object"] for c in taken[2]["configs"] if c["object"] not in first)
    (store / "objects" / other[:2] / other[2:]).unlink()
    assert bisector("snapshot", "list", "--repo", str(repo), "--json") == 2
    out = capsys.readouterr()
    assert [s["damaged"] is None for s in json.loads(out.out)] == [True, False, False]
    (error,) = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert error.startswith("error: 2 of 3 snapshots are damaged: ")
    assert "`bisector snapshot take " in out.err

    assert bisector("snapshot", "take", "v1.1.0", "v1.2.0", "--repo", str(repo)) == 0
    capsys.readouterr()
    assert bisector("snapshot", "list", "--repo", str(repo), "--json") == 0
    assert all(s["damaged"] is None for s in json.loads(capsys.readouterr().out))


def _documented(page: str, keys: set[str]) -> list[str]:
    """The keys no code span of the page names (`{path, object, size}` names three)."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    spans = [span for line in text.splitlines() for span in re.findall(r"`([^`]+)`", line)]
    named = {word for span in spans for word in re.findall(r"\w+", span)}
    return sorted(keys - named)


def test_every_key_of_the_snapshot_and_status_documents_is_in_cli_md(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/cli.md names every key `snapshot show|diff --json` and `status --json` print."""
    assert bisector("snapshot", "diff", "v1.0.0", "v1.2.0", "--repo", str(repo), "--json") == 0
    diff = json.loads(capsys.readouterr().out)
    keys = set(diff) | set(diff["a"]) | {k for c in diff["configs"] for k in c}
    keys |= {k for p in diff["packages"] for k in p}
    assert bisector("snapshot", "show", "v1.2.0", "--repo", str(repo), "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    keys |= set(shown) | {k for c in shown["configs"] for k in c}
    keys |= {k for d in shown["dependencies"] for k in d}
    rollback_target = repo.parent / "live"
    with (repo / "bisector.yaml").open("a") as config:
        config.write(f"rollback:\n  target: {rollback_target}\n")
    assert bisector("status", "--repo", str(repo), "--json") == 0
    status = json.loads(capsys.readouterr().out)
    keys |= set(status) | set(status["target"]) | set(status["daemon"])
    assert _documented("cli.md", keys) == []
