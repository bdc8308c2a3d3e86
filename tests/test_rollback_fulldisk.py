"""A rollback onto a full file system: one `error:` line saying the disk is full and that the
live configs were not touched, a `hint:`, exit 2, the old set still live, nothing left over.
A disk that fills after the switch: the error says the new set is live and what the next
command does; that command finishes the rollback.

A real full disk: a small tmpfs mounted beside the target (root only; skipped elsewhere),
filled until a write gets ENOSPC.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rollback_support import (
    BAD_LIVE,
    GOOD_LIVE,
    assert_clean,
    make_demo,
    read_live,
    run_cli,
    tmpfs,
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    with tmpfs(where, "size=512k"):
        yield where


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


# A health check that passes after filling the disk: the switch is done, the journal of
# the rollback (beside the target, on that disk) cannot be written any more.
_FILL_AND_PASS = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from tests.test_rollback_fulldisk import _fill\n"
    "from pathlib import Path\n"
    "_fill(Path(sys.argv[2]))\n"
)


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


def test_disk_full_after_the_switch_says_the_new_set_is_live(
    tmp_path: Path, small_disk: Path
) -> None:
    demo = make_demo(tmp_path)
    demo.target = small_disk / "srv" / "configs"
    demo.write_config()
    assert run_cli("rollback", "--to", "v2.4.0", "--yes", cwd=demo.repo).returncode == 0
    root = str(Path(__file__).resolve().parents[1])
    demo.write_config(health_check=[sys.executable, "-c", _FILL_AND_PASS, root, str(small_disk)])

    done = run_cli("rollback", "--to", "v2.3.1", "--yes", cwd=demo.repo)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], lines
    assert "no space left on the device" in lines[0], lines
    assert "the new set v2.3.1" in lines[0] and "is live" in lines[0], lines
    assert "the next bisector command keeps it and pauses" in lines[0], lines
    assert "free space" in lines[1] and "bisector status" in lines[1], lines
    assert read_live(demo.target) == GOOD_LIVE

    (small_disk / "filler").unlink()  # what the hint asks, then the next command
    state = json.loads(run_cli("status", "--json", cwd=demo.repo).stdout)
    assert "not confirmed" in state["recovered"] and state["paused"]
    assert read_live(demo.target) == GOOD_LIVE
    assert_clean(demo.target)
