"""Housekeeping: purge what has served its purpose, owner by owner, in short batches.

Idempotency records older than `ERX_IDEMPOTENCY_RETENTION_HOURS`, throttle counters whose window
has passed and expired web sessions. The access log is never purged: it is the patient's
record of who looked at their prescription. Each batch of `ERX_PURGE_BATCH_SIZE` rows is its own
transaction, so the job never holds locks the requests wait on for long; run it as often as you
like (hourly: the Kubernetes CronJob `erx-purge`, Compose's `purge` service).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kit import idempotency, throttle, web_session
from kit.runtime import Runtime
from kit.time import utcnow

Batch = Callable[[AsyncSession, int], Awaitable[int]]


async def _until_done(runtime: Runtime, batch: Batch) -> int:
    size = max(1, runtime.settings.purge_batch_size)
    total = 0
    while True:
        async with runtime.database.sessionmaker() as session, session.begin():
            deleted = await batch(session, size)
        total += deleted
        if deleted < size:
            return total


async def purge(runtime: Runtime, *, now: datetime | None = None) -> dict[str, int]:
    """Delete everything past its retention; return how many rows went, per table."""
    moment = now or utcnow()
    settings = runtime.settings
    kept_since = moment - timedelta(hours=settings.idempotency_retention_hours)

    async def records(session: AsyncSession, size: int) -> int:
        return await idempotency.purge_before(session, kept_since, limit=size)

    async def counters(session: AsyncSession, size: int) -> int:
        return await throttle.purge_stale(session, settings, now=moment, limit=size)

    async def sessions(session: AsyncSession, size: int) -> int:
        return await web_session.purge_expired_batch(session, now=moment, limit=size)

    return {
        "idempotency_record": await _until_done(runtime, records),
        "throttle_counter": await _until_done(runtime, counters),
        "web_session": await _until_done(runtime, sessions),
    }
