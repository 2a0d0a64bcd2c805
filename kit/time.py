"""Instants in UTC, shown in Vietnam time (UTC+7, no daylight saving)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def vn_time(value: datetime) -> str:
    """Render an instant in Vietnam time as ISO 8601 with its offset."""
    return value.astimezone(VIETNAM_TIME).isoformat()


def vn_today(now: datetime | None = None) -> date:
    """The calendar day it is in Vietnam at `now`."""
    return (now or utcnow()).astimezone(VIETNAM_TIME).date()


def start_of_vn_day(day: date) -> datetime:
    """00:00:00 of a Vietnamese calendar day, as an aware instant."""
    return datetime.combine(day, time(), VIETNAM_TIME)


# The last second of a day: a deadline people read as "until the end of 07/12" is this instant,
# and `now > deadline` turns true at 24:00 (the instant is shown to the second everywhere).
END_OF_DAY = time(23, 59, 59)


def end_of_vn_day(day: date) -> datetime:
    """23:59:59 of a Vietnamese calendar day, as an aware instant."""
    return datetime.combine(day, END_OF_DAY, VIETNAM_TIME)


def is_end_of_vn_day(value: datetime) -> bool:
    """Whether an instant is the last second of its Vietnamese day (a deadline by the day)."""
    local = value.astimezone(VIETNAM_TIME)
    return local.time().replace(microsecond=0) == END_OF_DAY


_DAY_FIRST = re.compile(r"^(\d{1,2})[/.\- ](\d{1,2})[/.\- ](\d{4})$")


def parse_day(text: str) -> date | None:
    """A day as people type it here, `20/06/1985` (day first, `/ . -` or space), or `1985-06-20`."""
    text = text.strip()
    try:
        match = _DAY_FIRST.match(text)
        if match:
            return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
