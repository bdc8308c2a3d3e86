"""Integration tests of snapshots on real git repositories: capture, store, verify, diff."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bisector.config import Config, parse_config
from bisector.errors import RefError, StoreError
from bisector.plumbing.atomic import atomic_write_bytes
from bisector.testing.gitutil import commit, make_repo
from snapshots import api
from snapshots.manifest import ResolvedPackage, Runtime
from snapshots.store import Store
from tests.snap_fixtures import (
    BISECTOR_YAML,
    CACHE_2,
    EXPECTED_CONFIGS_12,
    EXPECTED_PACKAGES_12,
    SERVING_1,
    build_release_repo,
    fresh_clone,
)


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_release_repo(tmp_path_factory.mktemp("snap") / "repo")


@pytest.fixture
def repo(release_repo: Path, tmp_path: Path) -> Path:
    """A fresh clone per test, so every test starts with no store."""
    return fresh_clone(release_repo, tmp_path / "repo")


@pytest.fixture
def cfg() -> Config:
    return parse_config(BISECTOR_YAML)


def _store_state(repo: Path) -> dict[str, object]:
    root = repo / ".bisector"
    files = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    objects = {k: v for k, v in files.items() if k.startswith("objects/")}
    with sqlite3.connect(root / "snapshots.sqlite") as con:
        rows = {
            t: con.execute(f"SELECT * FROM {t}").fetchall()
            for t in ("snapshots", "refs", "environments")
        }
    return {"objects": objects, "rows": rows}


def test_snapshot_holds_tags_configs_and_declared_deps(repo: Path, cfg: Config) -> None:
    """An annotated tag's snapshot has its configs from git objects and parsed dependencies."""
    (repo / "configs" / "serving.yaml").write_text("dirty: working tree\n")  # must be ignored
    (snap,) = api.take(repo, cfg, ["v1.0.0"])
    m = snap.manifest
    assert m.tags == ("v1.0.0",)
    assert m.subject == "initial serving stack"
    assert [c.path for c in m.configs] == [
        "configs/cache.yaml",
        "configs/extra.yaml",
        "configs/serving.yaml",
    ]
    assert api.config_set(repo, cfg, "v1.0.0")["configs/serving.yaml"] == SERVING_1.encode()
    names = {(d.name, d.kind, d.version) for d in m.dependencies}
    assert names == {
        ("fastpad", "requirement", "1.0.0"),
        ("oldlib", "requirement", None),
        ("numpy", "requirement", "1.26.4"),
        ("torch", "requirement", "2.1.0"),
        ("urllib3", "requirement", None),
        ("urllib3", "constraint", "2.0.0"),
        ("pydantic", "requirement", None),
        ("rich", "requirement", None),
        ("triton", "requirement", "2.1.0"),
        ("pydantic", "lock", "2.6.0"),
    }
    assert {f.path for f in m.dependency_files} == {
        "requirements.txt",
        "requirements/base.txt",
        "requirements/constraints.txt",
        "pyproject.toml",
        "uv.lock",
    }
    assert m.notes == ()


def test_lightweight_tag_on_a_merge_commit(repo: Path, cfg: Config) -> None:
    """A lightweight tag on a merge sees the merged branch's config change."""
    (snap,) = api.take(repo, cfg, ["v1.1.0"])
    assert snap.manifest.tags == ("v1.1.0",)
    assert api.config_set(repo, cfg, "v1.1.0")["configs/cache.yaml"] == CACHE_2.encode()
    d = api.diff(repo, cfg, "v1.0.0", "v1.1.0").to_json()
    assert d["configs"] == [
        {
            "file": "configs/cache.yaml",
            "key": "cache.size_mb",
            "change": "changed",
            "old": 512,
            "new": 1024,
            "note": None,
            "risk": "medium",
        }
    ]
    assert d["packages"] == [] and d["resolved"] == []


def test_diff_lists_exactly_the_changed_keys_and_packages(repo: Path, cfg: Config) -> None:
    """Rename, deleted file, key changes and every package change, each with its risk."""
    d = api.diff(repo, cfg, "v1.1.0", "v1.2.0").to_json()
    assert [
        (c["file"], c["key"], c["change"], c["old"], c["new"]) for c in d["configs"]
    ] == EXPECTED_CONFIGS_12
    assert [
        (p["name"], p["change"], p["from"], p["to"], p["risk"]) for p in d["packages"]
    ] == EXPECTED_PACKAGES_12
    assert d["a"]["ref"] == "v1.1.0" and d["b"]["tags"] == ["v1.2.0"]
    assert set(d) == {"a", "b", "configs", "packages", "resolved", "runtime"}


def test_malformed_yaml_is_stored_and_diffed_with_a_note(repo: Path, cfg: Config) -> None:
    """Malformed YAML at a ref is kept byte for byte and reported as a changed file."""
    (snap,) = api.take(repo, cfg, ["v1.3.0"])
    bad = snap.manifest.config("configs/serving.yaml")
    assert bad is not None and bad.parse_error is not None
    assert api.config_set(repo, cfg, "v1.3.0")["configs/serving.yaml"].startswith(
        b"model: [unclosed"
    )
    d = api.diff(repo, cfg, "v1.2.0", "v1.3.0").to_json()
    assert len(d["configs"]) == 1
    (c,) = d["configs"]
    assert (c["file"], c["key"], c["change"]) == ("configs/serving.yaml", None, "changed")
    assert "malformed YAML" in c["note"]


def test_taking_twice_is_a_no_op(repo: Path, cfg: Config) -> None:
    """The second take returns the same id and changes no object and no index row."""
    first = api.take(repo, cfg, ["v1.0.0", "v1.2.0"])
    before = _store_state(repo)
    second = api.take(repo, cfg, ["v1.0.0", "v1.2.0"])
    assert [s.id for s in first] == [s.id for s in second]
    assert _store_state(repo) == before
    assert len(api.list_snapshots(repo, cfg)) == 2


def test_tampered_object_is_named_and_the_store_is_unchanged(repo: Path, cfg: Config) -> None:
    """Flipping one byte of a config object makes every read fail naming object and path."""
    (snap,) = api.take(repo, cfg, ["v1.0.0"])
    obj = snap.manifest.config("configs/serving.yaml")
    assert obj is not None
    path = Store(repo / ".bisector").object_path(obj.object)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    before = _store_state(repo)
    with pytest.raises(StoreError) as err:
        api.config_set(repo, cfg, "v1.0.0")
    assert obj.object[:12] in err.value.message
    assert "configs/serving.yaml" in err.value.message
    assert str(path) in err.value.message
    assert err.value.hint is not None and "snapshot take" in err.value.hint
    with pytest.raises(StoreError):
        api.diff(repo, cfg, "v1.0.0", "v1.1.0")
    assert _store_state(repo) == before


def test_retake_repairs_a_tampered_object(repo: Path, cfg: Config) -> None:
    """Taking the snapshot again rewrites a corrupt object from git."""
    (snap,) = api.take(repo, cfg, ["v1.0.0"])
    path = Store(repo / ".bisector").object_path(snap.id)
    path.chmod(0o644)
    path.write_bytes(b"{}")
    with pytest.raises(StoreError, match="manifest"):
        api.show(repo, cfg, "v1.0.0")
    api.take(repo, cfg, ["v1.0.0"])
    assert api.show(repo, cfg, "v1.0.0").id == snap.id


def test_unknown_and_unsafe_refs_leave_no_store(repo: Path, cfg: Config) -> None:
    """Refs are validated before the store is created."""
    with pytest.raises(RefError):
        api.take(repo, cfg, ["v1.0.0", "nope"])
    with pytest.raises(RefError):
        api.diff(repo, cfg, "--upload-pack=touch /tmp/x", "v1.0.0")
    assert not (repo / ".bisector").exists()


def test_show_by_id_prefix_and_missing_snapshot(repo: Path, cfg: Config) -> None:
    """A snapshot id prefix works like a ref; a ref without a snapshot asks to take it."""
    (snap,) = api.take(repo, cfg, ["v1.2.0"])
    assert api.show(repo, cfg, snap.id[:10]).id == snap.id
    with pytest.raises(StoreError, match="no snapshot of v1.0.0") as err:
        api.show(repo, cfg, "v1.0.0")
    assert err.value.hint == "take it first: bisector snapshot take v1.0.0"


def test_attached_environment_is_a_new_record_and_the_newest_wins(repo: Path, cfg: Config) -> None:
    """Attaching keeps the manifest id; show and diff use the newest record per key."""
    a, b = api.take(repo, cfg, ["v1.0.0", "v1.2.0"])
    rt = Runtime(python="3.11.9", cuda="12.4", gpu="H100")
    api.attach_environment(
        repo, cfg, a.commit, "venv", [ResolvedPackage(name="torch", version="2.1.0")], rt
    )
    api.attach_environment(
        repo, cfg, b.commit, "venv", [ResolvedPackage(name="torch", version="2.1.0")], rt
    )
    newer = api.attach_environment(
        repo,
        cfg,
        b.commit,
        "venv",
        [
            ResolvedPackage(name="torch", version="2.2.0"),
            ResolvedPackage(name="fastpad", version="1.1.0"),
        ],
        rt.model_copy(update={"cuda": "12.6"}),
    )
    assert newer.id == b.id
    shown = api.show(repo, cfg, "v1.2.0")
    assert [p.version for p in shown.environments["venv"].resolved if p.name == "torch"] == [
        "2.2.0"
    ]
    d = api.diff(repo, cfg, "v1.0.0", "v1.2.0").to_json()
    assert d["resolved"] == [
        {
            "env": "venv",
            "name": "fastpad",
            "change": "added",
            "from": None,
            "to": "1.1.0",
            "risk": "medium",
        },
        {
            "env": "venv",
            "name": "torch",
            "change": "upgraded",
            "from": "2.1.0",
            "to": "2.2.0",
            "risk": "high",
        },
    ]
    assert d["runtime"] == [
        {"env": "venv", "fact": "cuda", "from": "12.4", "to": "12.6", "risk": "high"}
    ]
    assert json.loads(shown.manifest.to_bytes())["commit"] == b.commit


def test_atomic_write_replaces_and_cleans_up(tmp_path: Path) -> None:
    """atomic_write_bytes replaces content, keeps the old mode and leaves no temp file."""
    target = tmp_path / "f.yaml"
    atomic_write_bytes(target, b"one")
    assert (target.stat().st_mode & 0o777) == 0o644
    target.chmod(0o600)
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and (target.stat().st_mode & 0o777) == 0o600
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.yaml"]


def test_a_double_star_glob_crosses_a_folder_whose_name_holds_a_newline(tmp_path: Path) -> None:
    """`**` (a regex `.`) missed a folder named `dir<newline>name` that `*` matched: its
    config was silently left out of the snapshot. Every character of a name is alike now."""
    repo = make_repo(tmp_path / "svc")
    commit(
        repo,
        {
            "configs/dir\nname/x.yaml": "a: 1\n",
            "configs/deep/dir\nname/y.yaml": "b: 2\n",
            "configs/plain.yaml": "c: 3\n",
            "other/dir\nname/z.yaml": "d: 4\n",
        },
        "v1",
        "v1",
    )
    yaml_text = "benchmark:\n  command: [python, bench.py]\nmetrics:\n  m: {direction: lower}\n"
    for glob, expected in [
        ("configs/**/*.yaml", ["configs/deep/dir\nname/y.yaml", "configs/dir\nname/x.yaml"]),
        ("configs/**", ["configs/deep/dir\nname/y.yaml", "configs/dir\nname/x.yaml"]),
        ("configs/*/x.yaml", ["configs/dir\nname/x.yaml"]),  # `*` matched it already
        ("configs/dir?name/x.yaml", ["configs/dir\nname/x.yaml"]),
    ]:
        cfg = parse_config(yaml_text + f"snapshots: {{configs: [{json.dumps(glob)}]}}\n")
        (snap,) = api.take(repo, cfg, ["v1"])
        held = [c.path for c in snap.manifest.configs]
        assert held == sorted(expected + (["configs/plain.yaml"] if "**" in glob else [])), glob
