"""A rollback target where nothing may be written (a read-only mount, a folder without
write permission): one `error:` line naming the path and a `hint:` saying what to check,
exit 2, nothing written."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bisector.cli import _os_hint
from tests.rollback_support import make_demo, run_cli


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
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where, errno.EROFS
    finally:
        subprocess.run(["umount", str(where)], check=True)


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
