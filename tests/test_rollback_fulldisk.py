"""A rollback onto a full file system: one `error:` line saying the disk is full and that the
live configs were not touched, a `hint:`, exit 2, the old set still live, nothing left over.

A real full disk: a small tmpfs mounted beside the target (root only; skipped elsewhere),
filled until a write gets ENOSPC.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rollback_support import BAD_LIVE, assert_clean, make_demo, read_live, run_cli


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _fill(disk: Path) -> None:
    """Write until the file system says it is full."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_rollback_on_a_full_disk_says_so_and_touches_nothing(
    tmp_path: Path, small_disk: Path
) -> None:
    demo = make_demo(tmp_path)
    target = small_disk / "srv" / "configs"
    first = run_cli("rollback", "--to", "v2.4.0", "--yes", "--target", str(target), cwd=demo.repo)
    assert first.returncode == 0, first.stderr
    _fill(small_disk)

    done = run_cli("rollback", "--to", "v2.3.1", "--yes", "--target", str(target), cwd=demo.repo)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], lines
    assert "no space left on the device" in lines[0], lines
    assert "the live configs were not touched" in lines[0], lines
    assert str(target.parent) in lines[0], lines  # where: the folder beside the target
    assert "free space" in lines[1], lines
    assert read_live(target) == BAD_LIVE
    assert_clean(target)
