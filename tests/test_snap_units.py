"""Unit tests of the pure parts of snapshots: deps parsing, YAML flattening, risk, diff."""

from __future__ import annotations

import os

import pytest

from snapshots.configs import flatten, match_globs, parse_config_bytes
from snapshots.deps import auto_detect, read_declared
from snapshots.diff import Risk, diff_configs, diff_declared, version_risk
from snapshots.manifest import ConfigFile, DeclaredDependency, Manifest, sha256_hex


def _reader(files: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda p: files[p].encode() if p in files else None


def test_requirements_includes_are_resolved_relative_to_the_including_file() -> None:
    """`-r` and `-c` paths are relative to the file that names them, markers are kept."""
    files = {
        "requirements.txt": "-r reqs/base.txt\n--find-links ./wheels\n-e .\nfoo==1.2  # pin\n",
        "reqs/base.txt": "--constraint=pins.txt\nbar[x,y]>=2 ; python_version >= '3.11'\n",
        "reqs/pins.txt": "bar==2.5\n",
    }
    got = read_declared(_reader(files), ["requirements.txt"])
    by = {(d.name, d.kind): d for d in got.dependencies}
    assert set(by) == {("foo", "requirement"), ("bar", "requirement"), ("bar", "constraint")}
    assert by["foo", "requirement"].version == "1.2"
    bar = by["bar", "requirement"]
    assert (bar.specifier, bar.version, bar.extras) == (">=2", None, ("x", "y"))
    assert bar.marker == 'python_version >= "3.11"'
    assert bar.source == "reqs/base.txt"
    assert by["bar", "constraint"].version == "2.5"
    assert set(got.files) == set(files)
    assert got.notes == []


def test_requirements_continuations_cycles_missing_includes_and_bad_lines_become_notes() -> None:
    """Line continuations join, include cycles stop, missing includes and junk are notes."""
    files = {
        "requirements.txt": "-r other.txt\n-r missing.txt\n-r ../outside.txt\nfoo\\\n==1.0\n!!!\n",
        "other.txt": "-r requirements.txt\nbaz\n",
    }
    got = read_declared(_reader(files), ["requirements.txt"])
    assert [(d.name, d.version) for d in got.dependencies] == [("baz", None), ("foo", "1.0")]
    assert len(got.notes) == 3
    assert any("missing.txt" in n for n in got.notes)
    assert any("outside" in n for n in got.notes)
    assert any("!!!" in n for n in got.notes)


def test_pyproject_dependencies_and_optional_groups() -> None:
    """[project].dependencies and optional-dependencies are read, names canonicalized."""
    files = {
        "pyproject.toml": '[project]\nname="x"\ndependencies=["Foo_Bar==1.0", "baz"]\n'
        '[project.optional-dependencies]\ngpu=["torch>=2"]\n'
    }
    got = read_declared(_reader(files), ["pyproject.toml"])
    assert [(d.name, d.version, d.group) for d in got.dependencies] == [
        ("baz", None, None),
        ("foo-bar", "1.0", None),
        ("torch", None, "gpu"),
    ]


@pytest.mark.parametrize("lock", ["uv.lock", "poetry.lock"])
def test_lock_files_give_name_and_version_and_skip_the_project(lock: str) -> None:
    """uv.lock and poetry.lock packages become pinned `lock` entries; the project is skipped."""
    files = {
        lock: '[[package]]\nname = "me"\nversion = "0.1"\nsource = { editable = "." }\n'
        '[[package]]\nname = "Requests"\nversion = "2.31.0"\n'
    }
    got = read_declared(_reader(files), [lock])
    assert [(d.name, d.version, d.kind) for d in got.dependencies] == [
        ("requests", "2.31.0", "lock")
    ]


def test_malformed_toml_is_a_note() -> None:
    """A lock file that is not TOML does not fail the snapshot."""
    got = read_declared(_reader({"uv.lock": "[[package\n"}), ["uv.lock"])
    assert got.dependencies == [] and "malformed TOML" in got.notes[0]


def test_auto_detect_only_looks_at_the_root() -> None:
    """pyproject, lock files and requirements*.txt at the root are picked up."""
    paths = ["pyproject.toml", "requirements-dev.txt", "sub/requirements.txt", "uv.lock", "x.txt"]
    assert auto_detect(paths) == ["pyproject.toml", "requirements-dev.txt", "uv.lock"]


def test_flatten_dotted_paths_and_list_indexes() -> None:
    """Nested mappings become dotted paths and list items are indexed."""
    doc = {"batching": {"dynamic": True, "sizes": [1, 8]}, "w": [{"p": 1}], "e": {}, "n": None}
    assert flatten(doc) == {
        "batching.dynamic": True,
        "batching.sizes[0]": 1,
        "batching.sizes[1]": 8,
        "w[0].p": 1,
        "e": {},
        "n": None,
    }


def test_globs_match_recursively_and_by_name() -> None:
    """`**` crosses folders, `*` does not."""
    paths = ["configs/a.yaml", "configs/x/b.yaml", "configs/c.json", "other/a.yaml"]
    assert match_globs(paths, ["configs/**/*.yaml"]) == ["configs/a.yaml", "configs/x/b.yaml"]
    assert match_globs(paths, ["configs/*.yaml", "*/c.json"]) == [
        "configs/a.yaml",
        "configs/c.json",
    ]


def test_malformed_yaml_is_reported_not_raised() -> None:
    """Bad YAML gives an error string with the line."""
    doc, err = parse_config_bytes("a.yaml", b"a: [1,\n")
    assert doc is None and err is not None and "malformed YAML" in err


@pytest.mark.parametrize(
    ("name", "old", "new", "risk"),
    [
        ("fastpad", "1.0.0", "2.0.0", Risk.HIGH),
        ("fastpad", "1.0.0", "1.1.0", Risk.MEDIUM),
        ("fastpad", "1.0.0", "1.0.1", Risk.LOW),
        ("fastpad", "1.0", "1.0.0.post1", Risk.LOW),
        ("torch", "2.1.0", "2.1.1", Risk.HIGH),
        ("nvidia-cudnn-cu12", "9.0", "9.0.1", Risk.HIGH),
        ("transformers", "4.40.0", "4.40.1", Risk.HIGH),
        ("tokenizers", "0.19.0", "0.19.1", Risk.HIGH),
        ("triton", "2.1.0", "2.1.1", Risk.HIGH),
        ("cupy-cuda12x", "13.0", "13.0.1", Risk.HIGH),
        # an epoch outranks every release number: `1!1.0` sorts after `2.0`
        ("fastpad", "1.0", "1!1.0", Risk.HIGH),
        ("fastpad", "1!1.0", "1!1.0.1", Risk.LOW),
        # a wheel built for another CUDA (or none) is a CUDA change, whatever its name
        ("flash-attn", "2.5.0+cu121", "2.5.0+cu118", Risk.HIGH),
        ("flash-attn", "2.5.0+cu121", "2.5.0+cpu", Risk.HIGH),
        ("vllm", "0.4.0", "0.4.0+rocm6.0", Risk.HIGH),
        ("fastpad", "1.0.0+build1", "1.0.0+build2", Risk.LOW),
    ],
)
def test_version_risk_levels(name: str, old: str, new: str, risk: Risk) -> None:
    """Major or GPU-stack changes are high, minor medium, patch low."""
    assert version_risk(name, old, new) is risk


def _dep(
    name: str, spec: str = "", version: str | None = None, kind: str = "requirement"
) -> DeclaredDependency:
    return DeclaredDependency(name=name, specifier=spec, version=version, source="r.txt", kind=kind)  # type: ignore[arg-type]


def test_diff_declared_kinds() -> None:
    """Upgrades, downgrades, specifier-only changes, additions and removals are told apart."""
    a = [
        _dep("up", "==1.0", "1.0"),
        _dep("down", "==2.0", "2.0"),
        _dep("spec", ">=1"),
        _dep("gone", "==1", "1"),
        _dep("same", "==1", "1"),
    ]
    b = [
        _dep("up", "==1.2", "1.2"),
        _dep("down", "==1.9", "1.9"),
        _dep("spec", ">=2"),
        _dep("new"),
        _dep("same", "==1", "1"),
    ]
    got = [(p.name, p.change, p.old, p.new, p.risk.value) for p in diff_declared(a, b)]
    assert got == [
        ("down", "downgraded", "2.0", "1.9", "high"),
        ("gone", "removed", "1", None, "medium"),
        ("new", "added", None, "*", "medium"),
        ("spec", "changed", ">=1", ">=2", "medium"),
        ("up", "upgraded", "1.0", "1.2", "medium"),
    ]


def test_diff_declared_the_same_pin_written_differently_is_no_change() -> None:
    """`==1.0` and `==1.0.0` pin one version, `>=1,<2` and `<2,>=1` allow the same ones:
    packaging reads them as equal, so no change ("changed, medium" before)."""
    a = [_dep("pin", "==1.0", "1.0"), _dep("rng", ">=1,<2"), _dep("moved", "==1.0", "1.0")]
    b = [_dep("pin", "==1.0.0", "1.0.0"), _dep("rng", "<2,>=1"), _dep("moved", "==1.1", "1.1")]
    got = [(p.name, p.change) for p in diff_declared(a, b)]
    assert got == [("moved", "upgraded")]


def _manifest(files: dict[str, bytes]) -> Manifest:
    return Manifest(
        commit="0" * 40,
        date="d",
        subject="s",
        configs=tuple(
            ConfigFile(path=p, object=sha256_hex(b), size=len(b)) for p, b in sorted(files.items())
        ),
    )


def test_diff_configs_reports_a_malformed_file_as_changed_with_a_note() -> None:
    """A file that stops parsing is one `changed` entry with the parse error, not a crash."""
    a = {"c.yaml": b"x: 1\n"}
    b = {"c.yaml": b"x: [\n"}
    (change,) = diff_configs(_manifest(a), a, _manifest(b), b)
    assert (change.file, change.key, change.change) == ("c.yaml", None, "changed")
    assert change.note is not None and change.note.startswith("b: malformed YAML")


def test_diff_configs_pairs_a_renamed_and_edited_file() -> None:
    """A file moved with a small edit is a rename plus its key changes."""
    a = {"old.yaml": b"a: 1\nb: 2\nc: 3\n"}
    b = {"new.yaml": b"a: 1\nb: 2\nc: 4\n"}
    got = [
        (c.file, c.key, c.change, c.old, c.new)
        for c in diff_configs(_manifest(a), a, _manifest(b), b)
    ]
    assert got == [
        ("new.yaml", None, "renamed", "old.yaml", "new.yaml"),
        ("new.yaml", "c", "changed", 3, 4),
    ]


def test_diff_configs_type_change_counts() -> None:
    """`1` and `true` or `1` and `"1"` are different values."""
    a = {"c.yaml": b"x: 1\ny: 1\n"}
    b = {"c.yaml": b"x: true\ny: '1'\n"}
    got = [(c.key, c.old, c.new) for c in diff_configs(_manifest(a), a, _manifest(b), b)]
    assert got == [("x", 1, True), ("y", 1, "1")]


def test_diff_configs_reads_json_as_json() -> None:
    """A JSON config is read by JSON's rules: a tab indent is fine, `1e5` is a number."""
    a = {"c.json": b'{\n\t"a": 1e5,\n\t"b": 1\n}\n'}
    b = {"c.json": b'{\n\t"a": "1e5",\n\t"b": 2\n}\n'}
    got = [(c.key, c.change, c.old, c.new) for c in diff_configs(_manifest(a), a, _manifest(b), b)]
    assert got == [("a", "changed", 100000.0, "1e5"), ("b", "changed", 1, 2)]


def test_diff_configs_a_date_quoted_into_a_string_is_a_change() -> None:
    """YAML reads `2024-01-01` as a date and `'2024-01-01'` as a string: a type change."""
    a = {"c.yaml": b"since: 2024-01-01\n"}
    b = {"c.yaml": b"since: '2024-01-01'\n"}
    got = [(c.key, c.change, c.old, c.new) for c in diff_configs(_manifest(a), a, _manifest(b), b)]
    assert got == [("since", "changed", "2024-01-01", "2024-01-01")]


def test_diff_table_tells_a_number_from_the_same_text() -> None:
    """`x: 1` -> `x: "1"` must not read as `1 -> 1` in the table."""
    from rich.console import Console

    from snapshots.diff import SideInfo, SnapshotDiff
    from snapshots.render import diff_renderable

    a = {"c.yaml": b"x: 1\ny: old\n"}
    b = {"c.yaml": b"x: '1'\ny: new\n"}
    side = SideInfo("r", "0" * 40, "s", (), "d", "s")
    diff = SnapshotDiff(side, side, tuple(diff_configs(_manifest(a), a, _manifest(b), b)), ())
    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(diff_renderable(diff))
    rows = {
        line.split("│")[2].strip(): line
        for line in console.export_text().splitlines()
        if "│" in line
    }
    assert [c.strip() for c in rows["x"].split("│")[4:6]] == ["1", '"1"']
    assert [c.strip() for c in rows["y"].split("│")[4:6]] == ["old", "new"]
