"""Vietnam time, the only local time the dialects speak."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# UTC+7 all year (no daylight saving), the same instant rule as `kit.time.VIETNAM_TIME`;
# restated here so the mapping layer imports nothing that drags in the database models.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")


def vn(value: datetime) -> datetime:
    """Return the same instant in Vietnam time."""
    return value.astimezone(VIETNAM_TIME)


def vn_iso(value: datetime) -> str:
    """Render an instant as ISO 8601 in Vietnam time, e.g. `2026-11-22T09:30:00+07:00`."""
    return vn(value).isoformat()
