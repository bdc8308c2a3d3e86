"""A rollback target where nothing may be written (a read-only mount, a folder without
write permission): one `error:` line naming the path and a `hint:` saying what to check,
exit 2, nothing written."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bisector.cli import _os_hint
from tests.rollback_support import BAD_LIVE, assert_clean, make_demo, read_live, run_cli, tmpfs


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A real folder no write may go into, and the errno a write there gets.

    As root, chmod stops no write: a read-only tmpfs is mounted there (EROFS), or the test
    is skipped where mounting is not allowed. Otherwise a folder chmod 555 (EACCES)."""
    where = tmp_path / "ro"
    where.mkdir()
    if os.geteuid() != 0:
        where.chmod(0o555)
        try:
            yield where, errno.EACCES
        finally:
            where.chmod(0o755)
        return
    with tmpfs(where, "ro,size=1m"):
        yield where, errno.EROFS


def test_a_real_write_there_fails_with_the_errno_the_hint_is_for(
    unwritable: tuple[Path, int],
) -> None:
    """The OSError a real write gets in that folder is given a hint (EROFS is no
    PermissionError, so it had none)."""
    where, code = unwritable
    with pytest.raises(OSError) as caught:
        (where / "x").write_text("x")
    assert caught.value.errno == code
    hint = _os_hint(caught.value)
    assert hint is not None
    if code == errno.EROFS:
        assert "mounted read-only" in hint and "findmnt" in hint
    else:
        assert hint == "check the path and its permissions"


def test_rollback_into_it_says_what_to_check(tmp_path: Path, unwritable: tuple[Path, int]) -> None:
    where, code = unwritable
    demo = make_demo(tmp_path)
    target = where / "configs"
    done = run_cli("rollback", "--to", "v2.3.1", "--yes", "--target", str(target), cwd=demo.repo)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], lines
    assert lines[0].startswith(f"error: {os.strerror(code)}: {where}/"), lines
    if code == errno.EROFS:
        assert "mounted read-only" in lines[1], lines
    else:
        assert lines[1] == "hint: check the path and its permissions", lines
    assert list(where.iterdir()) == []


@pytest.fixture
def locked_parent() -> Iterator[Callable[[Path], None]]:
    """Makes a folder take no new entry while its subfolders stay writable: chmod 555 for a
    user; as root (whom chmod does not stop) the immutable attribute, or the test is
    skipped where chattr cannot set it."""
    locked: list[Path] = []

    def lock(folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
        else:
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot make a folder immutable here: {done.stderr.strip()}")
        locked.append(folder)

    yield lock
    for folder in locked:
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_switch_that_cannot_write_beside_the_target_names_the_target(
    tmp_path: Path, locked_parent: Callable[[Path], None]
) -> None:
    """The state folder is writable but the target's folder takes no new entry (the new
    live link goes there): the error named the set's relative path (`.configs.bisector/
    sets/<gen>`, the link's text) and did not say the live set was as it was."""
    demo = make_demo(tmp_path)
    assert run_cli("rollback", "--to", "v2.4.0", "--yes", cwd=demo.repo).returncode == 0
    before = read_live(demo.target)
    locked_parent(demo.target.parent)

    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], lines
    assert lines[0].startswith(f"error: cannot switch {demo.target}: "), lines
    assert lines[0].endswith("; the live configs were not touched"), lines
    assert "fix permissions beside the target folder" in lines[1], lines
    assert read_live(demo.target) == before == BAD_LIVE
    assert_clean(demo.target)
    sets = demo.target.parent / f".{demo.target.name}.bisector" / "sets"
    assert len(list(sets.iterdir())) == 1  # the staged set was dropped
