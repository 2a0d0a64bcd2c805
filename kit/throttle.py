"""Throttling of guessing: failures counted per key in a table every app instance shares."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Column, Integer, String, bindparam, case, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from kit import metrics
from kit.database import UTCDateTime, on_rollback, upsert
from kit.errors import Throttled
from kit.settings import Settings
from kit.time import utcnow

MAX_KEY_LENGTH = 100


class ThrottleCounter(SQLModel, table=True):
    """Failures of one key (a connection code, a client address) in its current fixed window."""

    __tablename__ = "throttle_counter"

    key: str = Field(sa_column=Column(String(MAX_KEY_LENGTH), primary_key=True))
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    failures: int = Field(sa_column=Column(Integer, nullable=False))


@dataclass(frozen=True)
class Subject:
    """Who is counted, and how many failures that kind of key is allowed."""

    key: str
    free: int
    block: int


@dataclass(frozen=True)
class Verdict:
    """How to answer the subjects now: refuse for `retry_after` seconds, delay, or go ahead."""

    blocked: bool
    slowed: bool
    retry_after: int


def code_key(connection_code: str) -> str:
    return ("code:" + connection_code.strip().upper())[:MAX_KEY_LENGTH]


def address_key(address: str) -> str:
    return ("addr:" + address)[:MAX_KEY_LENGTH]


def subjects(settings: Settings, *, connection_code: str, address: str) -> list[Subject]:
    """The two counters of one attempt: its connection code and, with higher limits, its address."""
    factor = max(1, settings.throttle_address_factor)
    return [
        Subject(code_key(connection_code), settings.throttle_free_failures, settings.throttle_block_failures),
        Subject(
            address_key(address),
            settings.throttle_free_failures * factor,
            settings.throttle_block_failures * factor,
        ),
    ]


TABLE = ThrottleCounter.__table__  # type: ignore[attr-defined]
# Built once: every guarded request asks it (hot path).
_COUNTED = select(TABLE.c.key, TABLE.c.window_start, TABLE.c.failures).where(
    TABLE.c.key.in_(bindparam("keys", expanding=True)), TABLE.c.window_start > bindparam("since")
)


async def verdict(session: AsyncSession, settings: Settings, keys: list[Subject]) -> Verdict:
    """Judge the subjects by their failures in the current window."""
    now = utcnow()
    window = timedelta(seconds=settings.throttle_window_seconds)
    rows = await session.execute(_COUNTED, {"keys": [s.key for s in keys], "since": now - window})
    counted = {row.key: (row.window_start, row.failures) for row in rows}
    blocked, slowed, retry_after = False, False, 0
    for subject in keys:
        if subject.key not in counted:
            continue
        started, failures = counted[subject.key]
        if failures >= subject.block:
            blocked = True
            retry_after = max(retry_after, math.ceil((started + window - now).total_seconds()))
        elif failures >= subject.free:
            slowed = True
    return Verdict(blocked=blocked, slowed=slowed, retry_after=max(1, retry_after))


async def count_failure(session: AsyncSession, settings: Settings, keys: list[Subject]) -> int:
    """Add one failure to each subject in one statement per key; return the highest count.

    The upsert is a single conditional statement, so concurrent failures never lose a count.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.throttle_window_seconds)
    table = TABLE
    highest = 0
    # Sorted keys: two instances counting the same pair lock the rows in one order.
    for subject in sorted(keys, key=lambda s: s.key):
        stale = table.c.window_start <= cutoff
        stmt = (
            upsert(session, table)
            .values(key=subject.key, window_start=now, failures=1)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "failures": case((stale, 1), else_=table.c.failures + 1),
                    "window_start": case((stale, now), else_=table.c.window_start),
                },
            )
            .returning(table.c.failures)
        )
        highest = max(highest, int((await session.execute(stmt)).scalar_one()))
    return highest


class Pace:
    """How long to hold back this answer; the wait happens after the request's transaction ends."""

    def __init__(self) -> None:
        self.delay_seconds = 0.0

    def slow_down(self, seconds: float) -> None:
        self.delay_seconds = max(self.delay_seconds, seconds)


async def _pace() -> AsyncIterator[Pace]:
    pace = Pace()
    try:
        yield pace
    finally:
        # Declared before the session in a route, this runs after the session has committed or
        # rolled back: a slowed guesser never holds a connection (or SQLite's write lock) asleep.
        if pace.delay_seconds > 0:
            await asyncio.sleep(pace.delay_seconds)


def refuse(found: Verdict) -> Throttled:
    metrics.THROTTLED.inc()
    return Throttled(
        "Too many failed attempts; try again later / Quá nhiều lần thử sai, vui lòng thử lại sau",
        retry_after=found.retry_after,
    )


@dataclass(frozen=True)
class Attempt:
    """A guess let through by `guard`; tell it when it failed so the failure is counted."""

    session: AsyncSession
    settings: Settings
    subjects: list[Subject]

    async def failed(self, *, refused_with_error: bool) -> None:
        """Count this failure against every subject.

        When the caller answers with an error, the request's transaction rolls back, so the
        count is written after the rollback in a transaction of its own; when it answers with
        a page (the transaction commits), it is counted right here.
        """
        if not refused_with_error:
            await count_failure(self.session, self.settings, self.subjects)
            return

        async def work(fresh: AsyncSession) -> None:
            await count_failure(fresh, self.settings, self.subjects)

        on_rollback(self.session, work)


async def guard(session: AsyncSession, settings: Settings, keys: list[Subject], pace: Pace) -> Attempt:
    """Judge a guess before it is checked: 429 when blocked, a delay when slowed."""
    found = await verdict(session, settings, keys)
    if found.blocked:
        raise refuse(found)
    if found.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    return Attempt(session, settings, keys)


PaceDep = Annotated[Pace, Depends(_pace, scope="function")]


async def purge_stale(session: AsyncSession, settings: Settings, *, now: datetime, limit: int) -> int:
    """Delete up to `limit` counters whose window has passed (they count nothing any more)."""
    table = ThrottleCounter.__table__  # type: ignore[attr-defined]
    cutoff = now - timedelta(seconds=settings.throttle_window_seconds)
    stale = select(table.c.key).where(table.c.window_start <= cutoff).limit(limit)
    result = await session.execute(delete(table).where(table.c.key.in_(stale.scalar_subquery())))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "Attempt",
    "Pace",
    "PaceDep",
    "Subject",
    "ThrottleCounter",
    "Verdict",
    "address_key",
    "code_key",
    "count_failure",
    "guard",
    "purge_stale",
    "refuse",
    "subjects",
    "verdict",
]
