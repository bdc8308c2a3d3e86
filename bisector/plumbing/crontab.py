"""A crontab line (crontab(5)) as an APScheduler 3.x cron trigger.

APScheduler's `CronTrigger.from_crontab` passes the day-of-week field through as its own,
where 0 is Monday; in a crontab 0 (and 7) is Sunday, 1 Monday. So `0 2 * * 1-5`, weekdays
to anyone who writes crontabs, ran Tuesday to Saturday, and `0 2 * * 0` on Mondays. The
field is read here in crontab's numbering and handed over as day names, which both agree on.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's 0..6 (7 is sun too)
_ITEM = re.compile(r"(?:(\*)|(\w+)(?:-(\w+))?)(?:/(\d+))?")


def _day(token: str) -> int:
    """0..7 (7 is Sunday again, so that `5-7` is Friday to Sunday), or a day's name."""
    if token.lower() in _DAYS:
        return _DAYS.index(token.lower())
    if not token.isdigit() or int(token) > 7:
        raise ValueError(f"day of week {token!r}: 0-7 (0 and 7 are Sunday) or sun..sat")
    return int(token)


def crontab_days(field: str) -> str:
    """A crontab day-of-week field (`1-5`, `0,6`, `*/2`, `mon-fri`) as day names, or `*`."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"day of week {item!r}: not a day, a range or a step")
        star, first, last, step = match.groups()
        low = 0 if star else _day(first)
        # `*/2` and `1/2` run to the end of the week; `1-5/2` to the range's end.
        high = _day(last) if last else 6 if star or step else low
        if high < low:
            raise ValueError(f"day of week {item!r}: the range ends before it starts")
        if step is not None and int(step) == 0:
            raise ValueError(f"day of week {item!r}: a step of 0")
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))
    return ",".join(_DAYS[d] for d in sorted(days))


def crontab_trigger(line: str) -> Any:
    """The APScheduler trigger of a 5-field crontab line, read as crontab(5) reads it: days
    of week in its numbering, and, when both day fields are restricted (neither starts with
    `*`), either one matching runs it (APScheduler alone asks both: `0 2 1 * mon` would run
    only on a Monday the 1st).

    :raises ValueError: not a crontab line (the message says which part), or one that never
        runs (31 February).
    """
    from apscheduler.triggers.combining import OrTrigger  # noqa: PLC0415 (only when a schedule is read)
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415

    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, dom, month, dow = fields
    days = crontab_days(dow)
    if dom.startswith("*") or dow.startswith("*"):
        parts = [CronTrigger.from_crontab(" ".join([minute, hour, dom, month, days]))]
    else:
        parts = [
            CronTrigger.from_crontab(" ".join([minute, hour, dom, month, "*"])),
            CronTrigger.from_crontab(" ".join([minute, hour, "*", month, days])),
        ]
    if all(t.get_next_fire_time(None, dt.datetime.now(t.timezone)) is None for t in parts):
        raise ValueError("it never runs (no such date, e.g. 31 February)")
    return parts[0] if len(parts) == 1 else OrTrigger(parts)
