"""Damaged records beside the live folder (`live.json`, `intent.json`, a set's manifest).

Malformed JSON and JSON of the wrong shape (a list, a number, missing keys, wrong types,
a generation name that leaves `sets/`) are the same thing to `status` and to the
emergency `rollback --force`: exit 2, one `error:` line naming the file, a `hint:` saying
what to do, the live folder untouched. Never an internal error (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rollback_support import BAD_LIVE, Demo, make_demo, read_live, run_cli

COMMANDS = {
    "status": ("status",),
    "rollback": ("rollback", "--to", "v2.3.1", "--yes", "--force"),
}
RECOVERING = {**COMMANDS, "pause": ("pause",), "resume": ("resume",)}  # all read intent.json
LIVE_RECORD = {"gen": "0123456789ab-0123456789ab", "set_id": "0123", "label": "v2.4.0"}
WRONG_SHAPES = {
    "malformed": "{bad",
    "an object without its keys": '{"x": 1}',
    "a list": "[]",
    "a number": "3",
    "a string": '"live"',
    "null": "null",
    "a gen of the wrong type": json.dumps({**LIVE_RECORD, "gen": 5}),
    "a gen outside sets/": json.dumps({**LIVE_RECORD, "gen": "../../etc"}),
    "a label of the wrong type": json.dumps({**LIVE_RECORD, "label": ["v2.4.0"]}),
}


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A demo whose live folder bisector switched to v2.4.0 (kept pristine: copied per test)."""
    demo = make_demo(tmp_path_factory.mktemp("rolled"))
    done = run_cli("rollback", "--to", "v2.4.0", "--yes", cwd=demo.repo)
    assert done.returncode == 0, done.stderr
    return demo


@pytest.fixture
def demo(rolled: Demo, tmp_path: Path) -> Demo:
    import shutil

    base = rolled.repo.parent
    shutil.copytree(base, tmp_path / "copy", symlinks=True)
    copy = Demo(tmp_path / "copy" / "repo", tmp_path / "copy" / "srv" / "configs")
    copy.write_config()
    assert read_live(copy.target) == BAD_LIVE
    return copy


def _state(demo: Demo) -> Path:
    return demo.target.parent / f".{demo.target.name}.bisector"


def _refused(demo: Demo, command: str, path: Path) -> str:
    """Exit 2 with `error:` naming `path` and a `hint:`; the live set is still v2.4.0."""
    done = run_cli(*RECOVERING[command], cwd=demo.repo)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], done.stderr
    assert str(path) in lines[0] and "internal error" not in lines[0], lines[0]
    assert read_live(demo.target) == BAD_LIVE
    return lines[1]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("content", WRONG_SHAPES.values(), ids=list(WRONG_SHAPES))
def test_a_damaged_live_record_is_exit_2_with_a_hint(
    demo: Demo, command: str, content: str
) -> None:
    record = _state(demo) / "live.json"
    assert json.loads(record.read_text())["label"] == "v2.4.0"
    record.write_text(content)
    hint = _refused(demo, command, record)
    assert hint.startswith("hint: delete it")
    record.unlink()  # what the hint says: then both commands work again
    done = run_cli(*COMMANDS[command], cwd=demo.repo)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "content",
    [
        "[]",
        "7",
        '{"op": "x"}',
        '{"op": "x", "phase": "later", "to_gen": "a", "to_label": "b", "from_gen": null, '
        '"health_check": false, "pause_on_failure": false}',
        '{"op": "x", "phase": "apply", "to_gen": "../..", "to_label": "b", "from_gen": null, '
        '"health_check": false, "pause_on_failure": false}',
        '{"op": "x", "phase": "apply", "to_gen": "a", "to_label": "b", "from_gen": null, '
        '"health_check": "no", "pause_on_failure": false}',
    ],
    ids=["list", "number", "missing", "phase", "gen", "bool"],
)
def test_a_damaged_intent_is_exit_2_with_a_hint(demo: Demo, command: str, content: str) -> None:
    intent = _state(demo) / "intent.json"
    intent.write_text(content)
    hint = _refused(demo, command, intent)
    assert "delete the journal file" in hint
    assert intent.read_text() == content


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "damage",
    [
        lambda _doc: [],
        lambda doc: {**doc, "files": None},
        lambda doc: {**doc, "files": {"serving.yaml": 1}},
        lambda doc: {k: v for k, v in doc.items() if k != "label"},
    ],
    ids=["list", "files-null", "hash-number", "no-label"],
)
def test_a_damaged_manifest_is_exit_2_with_a_hint(demo: Demo, command: str, damage: object) -> None:
    gen = json.loads((_state(demo) / "live.json").read_text())["gen"]
    manifest = _state(demo) / "manifests" / f"{gen}.json"
    manifest.write_text(json.dumps(damage(json.loads(manifest.read_text()))))  # type: ignore[operator]
    hint = _refused(demo, command, manifest)
    assert "delete it" in hint and "--force" in hint
    manifest.unlink()
    done = run_cli(*COMMANDS["rollback"], cwd=demo.repo)
    assert done.returncode == 0, done.stderr


def _intent(**fields: object) -> str:
    doc = {
        "op": "0123456789ab",
        "phase": "undo",
        "to_gen": "aaaaaaaaaaaa-0123456789ab",
        "to_label": "v2.3.1",
        "from_gen": "cccccccccccc-dddddddddddd",
        "health_check": True,
        "pause_on_failure": True,
        **fields,
    }
    return json.dumps(doc)


@pytest.mark.parametrize("command", RECOVERING)
@pytest.mark.parametrize(
    "content",
    [
        _intent(),  # an undo back to a set that does not exist: a dangling live path
        _intent(from_gen=None),  # an undo of a first apply, yet another set is live: unlinked
        _intent(phase="apply", to_gen="aaaaaaaaaaaa-ffffffffffff"),  # a set of another op
    ],
    ids=["undo-to-missing-set", "undo-unlinks-another-set", "to-gen-of-another-op"],
)
def test_a_well_formed_intent_that_does_not_match_the_sets_is_refused(
    demo: Demo, command: str, content: str
) -> None:
    """Recovery never acts on an intent the folder beside it contradicts: it would point the
    live path at nothing, or remove a set it did not write."""
    intent = _state(demo) / "intent.json"
    intent.write_text(content)
    link = Path(demo.target).readlink()
    sets = sorted(p.name for p in (_state(demo) / "sets").iterdir())
    hint = _refused(demo, command, intent)
    assert "delete the journal file" in hint
    assert intent.read_text() == content
    assert Path(demo.target).readlink() == link
    assert sorted(p.name for p in (_state(demo) / "sets").iterdir()) == sets
