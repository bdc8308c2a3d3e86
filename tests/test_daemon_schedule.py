"""`daemon.schedule` read as crontab(5) reads it: day of week 0 and 7 are Sunday."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bisector.daemon.service import _scheduler

SUNDAY = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _next_days(schedule: str, n: int = 7) -> list[str]:
    """The weekdays of the daemon's next `n` scheduled cycles after a Sunday noon (UTC)."""
    scheduler = _scheduler(Path("."), None, schedule, resume_now=False)
    trigger = scheduler.get_job("cycle").trigger
    for part in getattr(trigger, "triggers", [trigger]):  # an OrTrigger's, or the one
        part.timezone = dt.UTC  # the host's zone would move a 02:00 cycle across midnight
    days, at = [], SUNDAY
    for _ in range(n):
        at = trigger.get_next_fire_time(None, at + dt.timedelta(seconds=1))
        days.append(at.strftime("%a %d"))
    return days


@pytest.mark.parametrize(
    ("schedule", "days"),
    [
        # APScheduler's own numbering (0 = Monday) ran weekdays Tuesday to Saturday.
        ("0 2 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
        ("0 2 * * 0", ["Sun"] * 7),
        ("0 2 * * 7", ["Sun"] * 7),
        ("0 2 * * 5-7", ["Fri", "Sat", "Sun", "Fri", "Sat", "Sun", "Fri"]),
        ("0 2 * * 0,6", ["Sat", "Sun", "Sat", "Sun", "Sat", "Sun", "Sat"]),
        ("0 2 * * */2", ["Tue", "Thu", "Sat", "Sun", "Tue", "Thu", "Sat"]),
        ("0 2 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
        ("0 2 * * *", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ],
)
def test_day_of_week_is_crontab_s(schedule: str, days: list[str]) -> None:
    assert [day.split()[0] for day in _next_days(schedule)] == days


def test_both_day_fields_restricted_run_on_either_as_cron_does() -> None:
    """crontab(5): with day of month and day of week both restricted, either one matching
    runs it; APScheduler alone asks both (a Monday the 1st: next in February 2027)."""
    assert _next_days("0 2 1 * mon", 6) == [
        "Mon 07",
        "Mon 14",
        "Mon 21",
        "Mon 28",
        "Fri 01",
        "Mon 04",
    ]
    # a `*`-led field is unrestricted in cron: both must match, as before
    assert _next_days("0 2 */2 * mon", 2) == ["Mon 07", "Mon 21"]


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("0 2 * * 8", "day of week '8': 0-7 (0 and 7 are Sunday)"),
        ("0 2 * * 5-1", "the range ends before it starts"),
        ("0 2 * * */0", "a step of 0"),
        ("61 * * * *", "61"),
        ("@hourly", "expected 5"),
        ("0 2 31 2 *", "it never runs (no such date, e.g. 31 February)"),
    ],
)
def test_a_schedule_cron_would_not_read_is_refused_on_load(
    tmp_path: Path, schedule: str, words: str
) -> None:
    from tests.conftest import run_cli

    (tmp_path / "bisector.yaml").write_text(
        "benchmark:\n  command: [python, bench.py]\nmetrics:\n  latency_ms: {direction: lower}\n"
        f"daemon:\n  schedule: {schedule!r}\n"
    )
    result = run_cli("config", "check", cwd=tmp_path)
    assert result.returncode == 2, result
    assert (
        result.stderr.count("error:") == 1
        and "daemon.schedule: not a crontab line" in result.stderr
    )
    assert words in result.stderr, result.stderr
