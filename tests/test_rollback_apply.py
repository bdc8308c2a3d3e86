"""Rollback apply: plan, dry run, confirmation, drift, adoption, locks, staging errors, readers."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bisector.errors import RefError, RollbackError
from bisector.store.control import ControlStore
from rollback import GitConfigSource, RollbackRequest, make_plan, roll_back
from rollback.layout import Layout
from rollback.lock import LockedError, exclusive_lock
from rollback.service import DriftError
from tests.conftest import tree_digest
from tests.rollback_support import (
    BAD_LIVE,
    GOOD_LIVE,
    Demo,
    assert_clean,
    hooked,
    make_demo,
    read_live,
    run_cli,
)


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    return make_demo(tmp_path)


def _apply(demo: Demo, ref: str, **kw: object) -> object:
    cs = GitConfigSource(demo.repo, ["configs/**/*.yaml"]).config_set(ref)
    return roll_back(RollbackRequest(target=demo.target, config_set=cs, **kw))  # type: ignore[arg-type]


def test_git_source_reads_configs_at_a_tag(demo: Demo) -> None:
    """The git source returns exactly the matching files at the tag, rebased under configs/."""
    cs = GitConfigSource(demo.repo, ["configs/**/*.yaml"]).config_set("v2.3.1")
    assert set(cs.files) == set(GOOD_LIVE)
    assert cs.label.startswith("v2.3.1 (")


@pytest.mark.parametrize("ref", ["-x", "--upload-pack=evil", "a..b", "nope"])
def test_bad_refs_are_refused(demo: Demo, ref: str) -> None:
    """Refs that look like options, ranges or unknown names are refused with a RefError."""
    with pytest.raises(RefError):
        GitConfigSource(demo.repo, ["configs/**/*.yaml"]).config_set(ref)


def test_plan_lists_files_and_dotted_keys() -> None:
    """The plan names added, removed and changed files and the YAML keys that change."""
    plan = make_plan(
        {"a.yaml": b"x:\n  y: 1\n  z: 2\n", "gone.yaml": b"k: 1\n"},
        {"a.yaml": b"x:\n  y: 3\n  w: 2\n", "new.txt": b"hi"},
    ).to_json()
    assert (
        plan["added"] == ["new.txt"]
        and plan["removed"] == ["gone.yaml"]
        and plan["changed"] == ["a.yaml"]
    )
    keys = {(k["file"], k["key"], k["kind"]) for k in plan["keys"]}
    assert ("a.yaml", "x.y", "changed") in keys and ("a.yaml", "x.w", "added") in keys
    assert ("a.yaml", "x.z", "removed") in keys


def test_the_plan_shows_a_key_one_side_lacks_as_absent_and_a_null_as_null() -> None:
    """`handmade: 1 -> (absent)`: `null` is kept for a key whose value is YAML's null."""
    from pathlib import Path as P

    from rollback.render import describe
    from rollback.request import RollbackResult

    plan = make_plan(
        {"a.yaml": b"handmade: 1\nkept: 1\nnew_null: 1\n"},
        {"a.yaml": b"kept: 2\nadded: x\nnew_null: null\n"},
    )
    lines = describe(RollbackResult("dry_run", P("/srv/live"), "v2.3.1", plan))
    assert "      handmade: 1 -> (absent)" in lines and "      added: (absent) -> x" in lines
    assert "      new_null: 1 -> null" in lines and "      kept: 1 -> 2" in lines


def test_the_plan_cuts_a_long_value_on_screen_and_json_keeps_it_whole() -> None:
    """A key holding a certificate or a 60 MB blob was printed whole on one plan line (the
    confirmation prompt scrolled away under it): cut to 200 characters with its length."""
    from pathlib import Path as P

    from rollback.render import describe
    from rollback.request import RollbackResult

    blob = "x" * 100_000
    plan = make_plan({"a.yaml": b"k: short\n"}, {"a.yaml": f"k: {blob}\n".encode()})
    result = RollbackResult("dry_run", P("/srv/live"), "v2.3.1", plan)
    lines = describe(result)
    assert max(len(line) for line in lines) < 300, [len(line) for line in lines]
    [k_line] = [line for line in lines if line.startswith("      k: ")]
    assert k_line.startswith("      k: short -> xxxx") and k_line.endswith(
        "... (100,000 characters; --json shows it whole)"
    ), k_line
    assert result.to_json()["plan"]["keys"][0]["after"] == blob


def test_apply_switches_whole_set_and_is_clean(demo: Demo) -> None:
    """Applying one tag then the other leaves exactly that tag's files live, nothing else."""
    _apply(demo, "v2.4.0")
    assert read_live(demo.target) == BAD_LIVE
    result = _apply(demo, "v2.3.1")
    assert read_live(demo.target) == GOOD_LIVE
    assert demo.target.is_symlink()
    assert_clean(demo.target)
    assert result.status == "applied"  # type: ignore[attr-defined]


def test_dry_run_changes_nothing(demo: Demo) -> None:
    """`--dry-run` prints the plan and leaves the live folder, state and store untouched."""
    assert run_cli("rollback", "--to", "v2.4.0", "--yes", cwd=demo.repo).returncode == 0
    before = (tree_digest(demo.target.parent), tree_digest(demo.repo))
    done = run_cli("rollback", "--to", "v2.3.1", "--dry-run", "--json", cwd=demo.repo)
    assert done.returncode == 0, done.stderr
    assert '"status": "dry_run"' in done.stdout and "serving.yaml" in done.stdout
    assert (tree_digest(demo.target.parent), tree_digest(demo.repo)) == before
    assert read_live(demo.target) == BAD_LIVE


def test_json_says_what_is_live_after_a_dry_run_and_whether_paused(demo: Demo) -> None:
    """docs/rollback.md: `live` is the set live after the operation, null only when nothing
    is; `paused` whether bisector is paused after it. A dry run said `live: null` while
    v2.4.0 was live, and a rollback to the set already live (`unchanged`) `paused: false`
    while bisector was paused. (A dry run opens no journal: its `paused` stays false.)"""
    assert run_cli("rollback", "--to", "v2.4.0", "--yes", cwd=demo.repo).returncode == 0
    assert run_cli("pause", cwd=demo.repo).returncode == 0
    dry = run_cli("rollback", "--to", "v2.3.1", "--dry-run", "--json", cwd=demo.repo)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["live"] == "v2.4.0", dry.stdout
    same = run_cli("rollback", "--to", "v2.4.0", "--yes", "--json", cwd=demo.repo)
    assert same.returncode == 0, same.stderr
    doc = json.loads(same.stdout)
    assert (doc["status"], doc["live"], doc["paused"]) == ("unchanged", "v2.4.0", True), doc
    assert read_live(demo.target) == BAD_LIVE


def test_without_tty_confirmation_flag_is_required(demo: Demo) -> None:
    """Without a terminal on stdin and without --yes the command refuses (exit 2) and hints."""
    done = run_cli("rollback", "--to", "v2.3.1", cwd=demo.repo)
    assert done.returncode == 2
    assert "--yes" in done.stderr
    assert not demo.target.exists()


def test_drift_is_refused_unless_forced(demo: Demo) -> None:
    """A live file edited by hand makes the rollback refuse, naming it; --force overwrites."""
    _apply(demo, "v2.4.0")
    (demo.target / "serving.yaml").write_text("server: {workers: 99}\n")
    with pytest.raises(DriftError, match="serving.yaml"):
        _apply(demo, "v2.3.1")
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)
    assert done.returncode == 2 and "serving.yaml" in done.stderr and "--force" in done.stderr
    assert run_cli("rollback", "--to", "v2.3.1", "--yes", "--force", cwd=demo.repo).returncode == 0
    assert read_live(demo.target) == GOOD_LIVE


def test_existing_real_folder_is_adopted_atomically(demo: Demo) -> None:
    """A pre-existing real live folder is replaced by the managed symlink, no drift claimed."""
    demo.target.mkdir(parents=True)
    (demo.target / "serving.yaml").write_text("hand: made\n")
    _apply(demo, "v2.3.1")
    assert demo.target.is_symlink() and read_live(demo.target) == GOOD_LIVE
    assert_clean(demo.target)


def test_failed_switch_without_rename_exchange_puts_the_folder_back(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without RENAME_EXCHANGE a real folder is first moved aside, then the link renamed in:
    when that second rename fails, the folder is back at the live path, nothing orphaned."""
    demo.target.mkdir(parents=True)
    (demo.target / "serving.yaml").write_text("hand: made\n")
    before = read_live(demo.target)
    monkeypatch.setattr("rollback.apply.exchange", lambda _a, _b: False)  # a kernel without it

    def full_disk_after_displacing(name: str) -> None:
        if name == "displaced":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with hooked(full_disk_after_displacing):
        with pytest.raises(RollbackError) as info:
            _apply(demo, "v2.3.1")
    assert "cannot switch" in str(info.value) and "not touched" in str(info.value)
    assert not demo.target.is_symlink() and read_live(demo.target) == before
    assert_clean(demo.target)
    _apply(demo, "v2.3.1")  # and the next rollback adopts it as usual
    assert demo.target.is_symlink() and read_live(demo.target) == GOOD_LIVE
    assert_clean(demo.target)


def test_second_concurrent_rollback_is_refused(demo: Demo, tmp_path: Path) -> None:
    """While one rollback runs (its health check waits), a second one is refused at once."""
    release = tmp_path / "release"  # the first one's health check passes once this exists
    wait = f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)"
    demo.write_config(health_check=[sys.executable, "-c", wait])
    first = subprocess.Popen(
        [sys.executable, "-m", "bisector", "rollback", "--to", "v2.4.0", "--yes"],
        cwd=demo.repo,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    layout = Layout.for_target(demo.target)
    deadline = time.monotonic() + 20
    while not layout.intent_path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)
    assert done.returncode == 2 and "already running" in done.stderr
    assert first.poll() is None  # refused while the first still ran, not after waiting for it
    release.touch()
    assert first.wait(timeout=30) == 0
    assert read_live(demo.target) == BAD_LIVE


def test_rollback_lock_keeps_a_second_rollback_out(demo: Demo) -> None:
    """Holding the repository's rollback lock (as a rollback or the daemon's policy does while it swaps) keeps another out."""
    from bisector.config import load_config
    from rollback.entry import rollback_from_config, rollback_lock_path

    cfg = load_config(demo.repo)
    with exclusive_lock(rollback_lock_path(demo.repo, cfg)), pytest.raises(LockedError):
        rollback_from_config(demo.repo, cfg, "v2.3.1")
    assert not demo.target.exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_staging_errors_leave_live_set_untouched(demo: Demo, code: int) -> None:
    """ENOSPC or EACCES while staging leaves the old set live, no leftovers, a clear error."""
    _apply(demo, "v2.4.0")
    seen = {"n": 0}

    def fail_on_second_write(name: str) -> None:
        if name == "staging_write":
            seen["n"] += 1
            if seen["n"] == 2:
                raise OSError(code, os.strerror(code))

    with hooked(fail_on_second_write):
        with pytest.raises(RollbackError) as info:
            _apply(demo, "v2.3.1")
    expected = "no space left" if code == errno.ENOSPC else "permission denied"
    assert expected in str(info.value) and "not touched" in str(info.value)
    assert read_live(demo.target) == BAD_LIVE
    assert_clean(demo.target)
    sets = Layout.for_target(demo.target).sets_dir
    assert len([p for p in sets.iterdir()]) == 1  # only the live generation


@pytest.mark.slow
def test_readers_never_see_a_mix(demo: Demo) -> None:
    """A reader resolving the live path once per read always sees one whole tag's set."""
    _apply(demo, "v2.3.1")
    bad: list[dict[str, str]] = []
    reads = {"n": 0}
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen = read_live(demo.target)
            except FileNotFoundError:  # an old generation collected under us: retry
                continue
            reads["n"] += 1
            if seen not in (GOOD_LIVE, BAD_LIVE):
                bad.append(seen)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(60):
            _apply(demo, "v2.4.0" if i % 2 == 0 else "v2.3.1")
    finally:
        stop.set()
        thread.join()
    assert not bad and reads["n"] > 60


def test_control_pause_survives_and_uses_own_tables(tmp_path: Path) -> None:
    """Pause state persists across opens of the SQLite journal, in control_* tables (WAL)."""
    path = tmp_path / ".bisector" / "journal.sqlite"
    with ControlStore(path) as control:
        control.pause("testing", by="user")
    with ControlStore(path) as control:
        state = control.pause_state()
        assert state.paused and state.reason == "testing" and state.since
        tables = {
            r[0] for r in control._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"control_pause", "control_rollbacks"} <= tables
        assert control._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        control.resume()
    with ControlStore(path) as control:
        assert not control.pause_state().paused
