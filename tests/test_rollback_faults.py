"""Rollback under faults: SIGKILL at every named step and at hundreds of random points, SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollback import GitConfigSource, RollbackRequest, recover_interrupted, roll_back
from rollback.checkpoints import set_hook
from rollback.configset import ConfigSet
from tests.rollback_support import (
    BAD_LIVE,
    GOOD_LIVE,
    ROOT,
    Demo,
    assert_clean,
    hooked,
    make_demo,
    read_live,
)

FAIL_CHECK = ("false",)  # a failing health check, cheap to spawn
PASS_CHECK = ("true",)

_CHILD = """
import sys
from pathlib import Path
from rollback import GitConfigSource, RollbackRequest, roll_back
repo, target, ref, check = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cs = GitConfigSource(Path(repo), ["configs/**/*.yaml"]).config_set(ref)
roll_back(RollbackRequest(target=Path(target), config_set=cs, timeout_s=20,
                          health_check=tuple(check) or None))
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return make_demo(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def sets(demo: Demo) -> dict[str, ConfigSet]:
    source = GitConfigSource(demo.repo, ["configs/**/*.yaml"])
    return {"good": source.config_set("v2.3.1"), "bad": source.config_set("v2.4.0")}


def _reset(target: Path, cs: ConfigSet) -> None:
    recover_interrupted(target)
    roll_back(RollbackRequest(target=target, config_set=cs, force=True))


def _check_recovered(target: Path) -> dict[str, str]:
    recover_interrupted(target)
    live = read_live(target)
    assert live in (GOOD_LIVE, BAD_LIVE), f"mixed or partial live set: {sorted(live)}"
    assert_clean(target)
    return live


@pytest.mark.slow
@pytest.mark.parametrize(
    "point, check",
    [
        ("intent_written", PASS_CHECK),
        ("staging_write", PASS_CHECK),
        ("staged_file", PASS_CHECK),
        ("staged", PASS_CHECK),
        ("set_ready", PASS_CHECK),
        ("link_created", PASS_CHECK),
        ("switched", PASS_CHECK),
        ("health_checked", PASS_CHECK),
        ("live_recorded", PASS_CHECK),
        ("done", PASS_CHECK),
        ("switched", FAIL_CHECK),
        ("undo_intent_written", FAIL_CHECK),
        ("link_created", FAIL_CHECK),
        ("undo_switched", FAIL_CHECK),
        ("live_recorded", FAIL_CHECK),
    ],
)
def test_sigkill_at_each_named_step_then_restart(
    demo: Demo, sets: dict[str, ConfigSet], point: str, check: tuple[str, ...]
) -> None:
    """A process SIGKILLed at a named step leaves, after restart, exactly one whole set live."""
    target = demo.target.parent / f"named-{point}-{check[0]}"
    _reset(target, sets["bad"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BISECTOR_FAULT_POINT": point}
    if check == FAIL_CHECK and point == "link_created":
        # The second link_created is the undo's: count points to reach it.
        env.pop("BISECTOR_FAULT_POINT")
        env["BISECTOR_FAULT_AFTER"] = str(_points_until(demo, sets, "link_created", 2, check))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(demo.repo), str(target), "v2.3.1", *check],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    # Restart: `bisector status`-style recovery in a fresh process.
    live = _check_recovered(target)
    if point in ("health_checked", "live_recorded", "done") and check == PASS_CHECK:
        assert live == GOOD_LIVE  # the switch was confirmed before the kill
    if check == FAIL_CHECK and point in ("undo_intent_written", "undo_switched"):
        assert live == BAD_LIVE  # recovery finished the undo


def _points_until(
    demo: Demo, sets: dict[str, ConfigSet], name: str, nth: int, check: tuple[str, ...]
) -> int:
    """How many checkpoints a rollback passes until the nth `name` (counted in-process)."""
    target = demo.target.parent / "counting"
    _reset(target, sets["bad"])
    seen: list[str] = []
    with hooked(seen.append):
        roll_back(RollbackRequest(target=target, config_set=sets["good"], health_check=check))
    # A fresh process counts points from 1 like this hook does.
    hits = [i for i, n in enumerate(seen, start=1) if n == name]
    return hits[nth - 1]


def _forked(fn: object) -> int:
    """Run `fn` in a forked child; return its wait status (signal number if killed)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()  # type: ignore[operator]
        except BaseException:  # the child must never return into pytest
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


@pytest.mark.slow
def test_sigkill_at_hundreds_of_random_points(demo: Demo, sets: dict[str, ConfigSet]) -> None:
    """Killing a rollback after a random number of steps never leaves a mixed or partial set."""
    rng = random.Random(20260101)
    target = demo.target.parent / "random-kills"
    _reset(target, sets["bad"])
    # Count the steps of one whole apply (both health outcomes) to draw kill points from.
    totals = {}
    for check in (PASS_CHECK, FAIL_CHECK):
        seen: list[str] = []
        with hooked(seen.append):
            current = read_live(target)
            to = sets["good"] if current == BAD_LIVE else sets["bad"]
            roll_back(RollbackRequest(target=target, config_set=to, health_check=check))
        totals[check] = len(seen)
    killed = outcomes = 0
    for _ in range(300):
        check = rng.choice((PASS_CHECK, FAIL_CHECK))
        kill_at = rng.randint(1, totals[check] + 2)
        before = read_live(target)
        to = sets["good"] if before == BAD_LIVE else sets["bad"]

        def child(
            to: ConfigSet = to, check: tuple[str, ...] = check, kill_at: int = kill_at
        ) -> None:
            count = {"n": 0}

            def hook(_name: str) -> None:
                count["n"] += 1
                if count["n"] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

            set_hook(hook)
            roll_back(RollbackRequest(target=target, config_set=to, health_check=check))

        status = _forked(child)
        killed += status == signal.SIGKILL
        outcomes += 1
        _check_recovered(target)
    assert outcomes == 300 and killed > 250


@pytest.mark.slow
def test_sigkill_from_outside_after_random_delays(demo: Demo, sets: dict[str, ConfigSet]) -> None:
    """SIGKILL sent by another process at a random instant never leaves a mixed set."""
    rng = random.Random(7)
    target = demo.target.parent / "timed-kills"
    _reset(target, sets["bad"])

    def flipper() -> None:
        while True:
            live = read_live(target)
            to = sets["good"] if live == BAD_LIVE else sets["bad"]
            roll_back(RollbackRequest(target=target, config_set=to))

    for _ in range(40):
        pid = os.fork()
        if pid == 0:
            try:
                flipper()
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        _check_recovered(target)


@pytest.mark.parametrize("at", ["staged_file", "set_ready", "switched", "health"])
def test_sigterm_mid_apply_ends_clean(
    demo: Demo, sets: dict[str, ConfigSet], at: str, tmp_path: Path
) -> None:
    """SIGTERM during staging, after the switch or during the health check ends in a clean state."""
    target = demo.target.parent / f"term-{at}"
    _reset(target, sets["bad"])
    pidfile, finished = tmp_path / "check.pid", tmp_path / "check.finished"
    check = (
        sys.executable,
        "-c",
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
        "time.sleep(5); open(sys.argv[2], 'w').close()",
        str(pidfile),
        str(finished),
    )

    def child() -> None:
        def hook(name: str) -> None:
            if name == at:
                os.kill(os.getpid(), signal.SIGTERM)

        set_hook(hook)
        if at == "health":
            # Delivered from a timer while the check runs.
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
        roll_back(RollbackRequest(target=target, config_set=sets["good"], health_check=check))

    status = _forked(child)
    assert status == -1  # ApplyInterrupted raised: the process ended by itself, not killed
    # The health check was killed (and reaped), not waited for: it never got to its end.
    assert not finished.exists()
    if pidfile.exists():
        assert not Path(f"/proc/{pidfile.read_text()}").exists()
    assert read_live(target) == BAD_LIVE  # interrupted before confirmation: old set kept/restored
    assert_clean(target)
    assert not (target.parent / f".{target.name}.bisector" / "intent.json").exists()


def test_sigkill_between_the_renames_without_rename_exchange(
    demo: Demo, sets: dict[str, ConfigSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while a real folder is moved aside (no RENAME_EXCHANGE): no live path for an
    instant; recovery puts the folder back, as it was."""
    target = demo.target.parent / "displaced-kill"
    target.mkdir(parents=True)
    (target / "serving.yaml").write_text("hand: made\n")
    before = read_live(target)
    monkeypatch.setattr("rollback.apply.exchange", lambda _a, _b: False)  # a kernel without it
    monkeypatch.setenv("BISECTOR_FAULT_POINT", "displaced")

    status = _forked(lambda: roll_back(RollbackRequest(target=target, config_set=sets["good"])))

    assert status == signal.SIGKILL and not os.path.lexists(target)
    monkeypatch.delenv("BISECTOR_FAULT_POINT")
    recover_interrupted(target)
    assert target.is_dir() and not target.is_symlink() and read_live(target) == before
    assert_clean(target)
