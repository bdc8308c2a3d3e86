"""Partial states of pyproject.toml (textual rewrite) and of lock files (left out only when exact)."""

from __future__ import annotations

import tomllib

import pytest

from bisector.isolate.changes import Change, PartialStateError, dependency_changes, render_files
from bisector.isolate.pyproject_edit import (
    EditError,
    apply_packages,
    dependency_arrays,
    pin_package,
)

PY = "pyproject.toml"
OLD = """[project]
name = "svc"  # the service
dependencies = [
    # pinned for the GPU image
    "fastpad==1.0.0",  # keep in sync
    'quickjson == 1.0.0',
    "tracelite==0.4.0; python_version >= '3.8'",
]

[project.optional-dependencies]
dev = ["pytest==8.0", "tracelite==0.4.0"]

[tool.other]
dependencies = ["fastpad==1.0.0"]
"""
NEW = (
    OLD.replace('"fastpad==1.0.0",', '"fastpad==1.3.0",')
    .replace("quickjson == 1.0.0", "quickjson == 1.1.0")
    .replace("    \"tracelite==0.4.0; python_version >= '3.8'\",\n", '    "newdep==2.0",\n')
    .replace(
        'dev = ["pytest==8.0", "tracelite==0.4.0"]', 'dev = ["pytest==8.0", "tracelite==0.5.0"]'
    )
)


def _deps(old: str = OLD, new: str = NEW, files: tuple[str, ...] = (PY,)) -> dict[str, Change]:
    return {c.name: c for c in dependency_changes({PY: old.encode()}, {PY: new.encode()}, files)}


def test_pyproject_changes_are_listed_per_package() -> None:
    """An upgrade in dependencies, one in an optional group, an addition: one change each."""
    got = {(c.name, c.old, c.new) for c in _deps().values()}
    assert ("fastpad", "1.0.0", "1.3.0") in got and ("quickjson", "1.0.0", "1.1.0") in got
    assert {c.name for c in _deps().values()} == {"fastpad", "quickjson", "tracelite", "newdep"}


def test_one_upgrade_rewrites_only_its_string_and_keeps_every_other_byte() -> None:
    """Applying fastpad alone changes one literal; comments, quotes and [tool] stay."""
    deps = _deps()
    files = render_files(
        {PY: OLD.encode()}, {PY: NEW.encode()}, list(deps.values()), [deps["fastpad"]]
    )
    assert (
        files[PY] == OLD.replace('"fastpad==1.0.0",  # keep', '"fastpad==1.3.0",  # keep').encode()
    )
    assert b'[tool.other]\ndependencies = ["fastpad==1.0.0"]' in (files[PY] or b"")


def test_removal_addition_and_optional_group_are_applied_in_place() -> None:
    """Removing a line, appending an addition and rewriting an optional entry parse as asked."""
    text = apply_packages(OLD, NEW, {"tracelite", "newdep"})
    doc = tomllib.loads(text)["project"]
    assert doc["dependencies"] == ["fastpad==1.0.0", "quickjson == 1.0.0", "newdep==2.0"]
    assert doc["optional-dependencies"]["dev"] == ["pytest==8.0", "tracelite==0.5.0"]
    assert "# pinned for the GPU image\n" in text and "# keep in sync" in text


def test_inline_arrays_and_inline_tables_are_edited_too() -> None:
    """One-line arrays and optional groups written as an inline table are handled."""
    old = (
        '[project]\nname = "x"\ndependencies = ["a==1", "b==1", "c==1"]  # inline\n'
        'optional-dependencies = { gpu = ["d==1"] }\n'
    )
    new = (
        '[project]\nname = "x"\ndependencies = ["a==2", "c==1"]  # inline\n'
        'optional-dependencies = { gpu = ["d==2", "e==1"] }\n'
    )
    assert apply_packages(old, new, {"b"}) == old.replace('"b==1", ', "")
    assert apply_packages(old, new, {"a", "e"}) == old.replace('"a==1"', '"a==2"').replace(
        '"d==1"', '"d==1", "e==1"'
    )
    assert set(dependency_arrays(old)) == {None, "gpu"}


def test_pins_replace_the_version_and_keep_the_marker() -> None:
    """Version bisection pins a package in pyproject.toml, marker and other groups kept."""
    text = pin_package(OLD, "tracelite", "0.4.5")
    project = tomllib.loads(text)["project"]
    assert 'tracelite==0.4.5; python_version >= "3.8"' in project["dependencies"]
    assert project["optional-dependencies"]["dev"][1] == "tracelite==0.4.5"
    with pytest.raises(EditError):
        pin_package(OLD, "unknown", "1")


def test_a_new_optional_group_cannot_be_split() -> None:
    """A group only the culprit has is not guessed: the state is unresolved."""
    added = OLD.replace(
        'dev = ["pytest==8.0", "tracelite==0.4.0"]',
        'dev = ["pytest==8.0", "tracelite==0.4.0"]\ngpu = ["cudakit==1.0"]',
    )
    deps = _deps(OLD, added)
    with pytest.raises(PartialStateError):
        render_files(
            {PY: OLD.encode()},
            {PY: added.encode()},
            [*deps.values(), *_deps().values()],
            [deps["cudakit"]],
        )


LOCK_OLD = b"""version = 1
[[package]]
name = "fastpad"
version = "1.0.0"
[[package]]
name = "quickjson"
version = "1.0.0"
"""
LOCK_NEW = LOCK_OLD.replace(
    b'"1.0.0"\n[[package]]\nname = "quickjson"', b'"1.3.0"\n[[package]]\nname = "quickjson"'
).replace(b'name = "quickjson"\nversion = "1.0.0"', b'name = "quickjson"\nversion = "1.1.0"')
PINNED_OLD = (
    '[project]\nname = "x"\ndependencies = [\n  "fastpad==1.0.0",\n  "quickjson==1.0.0",\n]\n'
)
PINNED_NEW = (
    '[project]\nname = "x"\ndependencies = [\n  "fastpad==1.3.0",\n  "quickjson==1.1.0",\n]\n'
)


def _locked(
    old_py: str, new_py: str
) -> tuple[dict[str, bytes | None], dict[str, bytes | None], dict[str, Change]]:
    parent: dict[str, bytes | None] = {PY: old_py.encode(), "uv.lock": LOCK_OLD}
    culprit: dict[str, bytes | None] = {PY: new_py.encode(), "uv.lock": LOCK_NEW}
    return (
        parent,
        culprit,
        {c.name: c for c in dependency_changes(parent, culprit, [PY, "uv.lock"])},
    )


def test_a_lock_changing_with_exact_pins_is_left_out_of_partial_states() -> None:
    """With every locked package pinned in pyproject, a partial state drops uv.lock."""
    parent, culprit, deps = _locked(PINNED_OLD, PINNED_NEW)
    assert deps["fastpad"].file == PY and deps["fastpad"].touched == (PY, "uv.lock")
    files = render_files(parent, culprit, list(deps.values()), [deps["fastpad"]])
    assert files["uv.lock"] is None
    assert b'"fastpad==1.3.0"' in (files[PY] or b"") and b'"quickjson==1.0.0"' in (files[PY] or b"")
    every = render_files(parent, culprit, list(deps.values()), list(deps.values()))
    assert every == {PY: PINNED_NEW.encode(), "uv.lock": LOCK_NEW}
    pinned = render_files(
        parent, culprit, list(deps.values()), list(deps.values()), pins={"fastpad": "1.2.0"}
    )
    assert pinned["uv.lock"] is None and b'"fastpad==1.2.0"' in (pinned[PY] or b"")


def test_a_lock_over_ranges_makes_partial_states_unresolved() -> None:
    """With ranges in pyproject the resolver would choose: the state is not built, not guessed."""
    parent, culprit, deps = _locked(
        PINNED_OLD.replace("==1.0.0", ">=1.0"), PINNED_NEW.replace("==1.3.0", ">=1.0")
    )
    with pytest.raises(PartialStateError, match="resolver would not be held"):
        render_files(parent, culprit, list(deps.values()), [deps["quickjson"]])


def test_the_venv_key_follows_the_pyproject_dependency_lists() -> None:
    """The environment key changes with a dependency or optional entry, not with the version."""
    from bisector.builders.requirements import environment_key, read_requirements

    def key(text: str) -> str:
        reqs = read_requirements(lambda p: text.encode() if p == PY else None, [PY])
        return environment_key(reqs, python="3.11", index={})

    bumped = OLD.replace('name = "svc"', 'name = "svc"\nversion = "9"')
    assert key(OLD) == key(bumped)
    assert key(OLD) != key(apply_packages(OLD, NEW, {"fastpad"}))
    assert key(OLD) != key(apply_packages(OLD, NEW, {"tracelite"}))
