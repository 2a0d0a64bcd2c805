"""Throttling of guessing, counted in a table every app instance shares.

The policy (README, "Throttling"): a guesser is slowed and then refused, never the owner.

* Secrets (token endpoints, console sign-in) are counted per (client id, address) and per
  address, never per client id alone: secrets are 256-bit random, so no guesser needs a
  per-client lockout, and a stranger elsewhere can never lock a client out. Each attempt is
  *taken* from its counters in one atomic statement before the secret is checked, so parallel
  guesses cannot slip past the limit; a right secret gives its attempt back. A client that signed
  in from an address lately (a "known pair") is not refused there even when the address is.
* Unknown prescription codes are counted per pharmacy (its own quota): only the holder of the
  token can raise it, and a miss never touches any sign-in.
* The patient view counts per prescription code (price_portal.patient_view).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Column, Integer, Select, String, bindparam, case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from kit import metrics
from kit.database import SessionDep, UTCDateTime, after_transaction, on_rollback, one_of, upsert
from kit.errors import Throttled
from kit.prepared import Prepared
from kit.settings import Settings
from kit.time import utcnow

MAX_KEY_LENGTH = 100
KNOWN_PREFIX = "known:"


class ThrottleCounter(SQLModel, table=True):
    """Attempts (or failures) of one key in its current fixed window, which ends at `expires_at`."""

    __tablename__ = "throttle_counter"

    key: str = Field(sa_column=Column(String(MAX_KEY_LENGTH), primary_key=True))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    failures: int = Field(sa_column=Column(Integer, nullable=False))


@dataclass(frozen=True)
class Subject:
    """Who is counted, how many attempts are free, when refusal starts, and the window length."""

    key: str
    free: int
    block: int
    window_seconds: int


@dataclass(frozen=True)
class Verdict:
    """How to answer now: refuse for `retry_after` seconds, delay, or go ahead."""

    blocked: bool
    slowed: bool
    retry_after: int


def _key(prefix: str, *parts: str) -> str:
    return (prefix + "|".join(parts))[:MAX_KEY_LENGTH]


def address_key(address: str) -> str:
    return _key("addr:", address)


def pair_key(client_id: str, address: str) -> str:
    return _key("pair:", client_id.strip().upper(), address)


def client_key(client_id: str) -> str:
    return _key("client:", client_id.strip().upper())


def secret_subjects(settings: Settings, *, client_id: str, address: str) -> list[Subject]:
    """The counters of a secret: this (client, address) pair and, with wider limits, the address."""
    factor = max(1, settings.throttle_address_factor)
    window = settings.throttle_window_seconds
    return [
        Subject(
            pair_key(client_id, address),
            settings.throttle_free_failures,
            settings.throttle_block_failures,
            window,
        ),
        Subject(
            address_key(address),
            settings.throttle_free_failures * factor,
            settings.throttle_block_failures * factor,
            window,
        ),
    ]


def lookup_subjects(settings: Settings, *, client_id: str) -> list[Subject]:
    """The quota of unknown prescription codes of one authenticated pharmacy."""
    return [
        Subject(
            client_key(client_id),
            settings.throttle_lookup_free_failures,
            settings.throttle_lookup_block_failures,
            settings.throttle_window_seconds,
        )
    ]


TABLE = ThrottleCounter.__table__  # type: ignore[attr-defined]


def _counted(dialect: str) -> Select[Any]:
    return select(TABLE.c.key, TABLE.c.expires_at, TABLE.c.failures).where(
        one_of(dialect, TABLE.c.key, "keys"), TABLE.c.expires_at > bindparam("moment")
    )


# Built once: every lookup asks it (hot path); one array parameter on PostgreSQL, so it is
# prepared once for any number of keys.
_COUNTED = Prepared(_counted("postgresql"), elsewhere=_counted("sqlite"))


def _judge(
    subjects: Sequence[Subject], counted: dict[str, tuple[datetime, int]], now: datetime, *, taken: bool
) -> Verdict:
    """Judge counts; `taken` counts include this attempt (so the limit itself still passes)."""
    blocked, slowed, retry_after = False, False, 0
    for subject in subjects:
        if subject.key not in counted:
            continue
        ends, count = counted[subject.key]
        seen = count - 1 if taken else count
        if seen >= subject.block:
            blocked = True
            retry_after = max(retry_after, math.ceil((ends - now).total_seconds()))
        elif seen >= subject.free:
            slowed = True
    return Verdict(blocked=blocked, slowed=slowed, retry_after=max(1, retry_after))


async def verdict(session: AsyncSession, settings: Settings, subjects: Sequence[Subject]) -> Verdict:
    """Judge the subjects by their failures in the current window (a read, counting nothing)."""
    now = utcnow()
    rows = await _COUNTED.rows(session, {"keys": [s.key for s in subjects], "moment": now})
    counted = {row.key: (row.expires_at, row.failures) for row in rows}
    return _judge(subjects, counted, now, taken=False)


def _count_statement(session: AsyncSession, subjects: Sequence[Subject], now: datetime) -> object:
    """One multi-row upsert adding one to every subject (a passed window starts again at one)."""
    # Sorted and distinct keys: two instances counting the same keys lock the rows in one order,
    # and PostgreSQL refuses one statement touching a row twice.
    unique = {s.key: s for s in subjects}
    rows = [
        {"key": s.key, "expires_at": now + timedelta(seconds=s.window_seconds), "failures": 1}
        for s in sorted(unique.values(), key=lambda s: s.key)
    ]
    stmt = upsert(session, TABLE).values(rows)
    passed = TABLE.c.expires_at <= now
    return stmt.on_conflict_do_update(
        index_elements=[TABLE.c.key],
        set_={
            "failures": case((passed, 1), else_=TABLE.c.failures + 1),
            "expires_at": case((passed, stmt.excluded.expires_at), else_=TABLE.c.expires_at),
        },
    ).returning(TABLE.c.key, TABLE.c.expires_at, TABLE.c.failures)


async def count_failure(session: AsyncSession, subjects: Sequence[Subject]) -> Verdict:
    """Add one failure to every subject in one statement; judge the counts it returns."""
    now = utcnow()
    rows = await session.execute(_count_statement(session, subjects, now))  # type: ignore[call-overload]
    counted = {row.key: (row.expires_at, row.failures) for row in rows}
    return _judge(subjects, counted, now, taken=True)


async def _take(
    session: AsyncSession, subjects: Sequence[Subject], known: str | None
) -> tuple[Verdict, bool]:
    """Count this attempt and say whether its pair is known, in the given session."""
    found = False
    if known is not None:
        alive = await session.execute(
            select(TABLE.c.key).where(TABLE.c.key == known, TABLE.c.expires_at > utcnow())
        )
        found = alive.first() is not None
    return await count_failure(session, subjects), found


async def take(
    session: AsyncSession, subjects: Sequence[Subject], *, known: str | None = None
) -> tuple[Verdict, bool]:
    """Take one attempt from every subject before the secret is checked (check and count at once).

    On PostgreSQL the count commits at once in a transaction of its own, so parallel attempts
    see each other and the answer's rollback cannot undo it. SQLite runs one writer at a time
    (BEGIN IMMEDIATE): the count is made in the request's transaction and written again after
    a rollback.
    """
    engine = session.bind
    if engine is None or session.get_bind().dialect.name != "postgresql":
        taken = await _take(session, subjects, known)

        async def rewrite(fresh: AsyncSession) -> None:
            await count_failure(fresh, subjects)

        on_rollback(session, rewrite)
        return taken
    async with AsyncSession(engine) as own, own.begin():
        return await _take(own, subjects, known)


_GIVE_BACK = (
    update(TABLE)
    .where(TABLE.c.key.in_(bindparam("keys", expanding=True)), TABLE.c.failures > 0)
    .values(failures=TABLE.c.failures - 1)
)


async def give_back(
    session: AsyncSession, subjects: Sequence[Subject], *, known: str | None, known_seconds: int
) -> None:
    """A right secret: return its attempt and remember the pair as known (request's transaction)."""
    await session.execute(_GIVE_BACK, {"keys": sorted({s.key for s in subjects})})
    if known is None:
        return
    now = utcnow()
    until = now + timedelta(seconds=known_seconds)
    stmt = upsert(session, TABLE).values(key=known, expires_at=until, failures=0)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[TABLE.c.key], set_={"expires_at": stmt.excluded.expires_at}
        )
    )


def known_key(client_id: str, address: str) -> str:
    return _key(KNOWN_PREFIX, client_id.strip().upper(), address)


class Pace:
    """How long to hold back this answer; the wait happens after the request's transaction ends."""

    def __init__(self) -> None:
        self.delay_seconds = 0.0

    def slow_down(self, seconds: float) -> None:
        self.delay_seconds = max(self.delay_seconds, seconds)

    async def wait(self) -> None:
        if self.delay_seconds > 0:
            await asyncio.sleep(self.delay_seconds)


def pace_for(session: AsyncSession) -> Pace:
    """A pace whose wait runs once `session`'s transaction has committed or rolled back, so a
    slowed guesser never holds a connection asleep."""
    pace = Pace()
    after_transaction(session, pace.wait)
    return pace


async def _pace(session: SessionDep) -> Pace:
    # A plain dependency on the session, not a generator of its own: FastAPI's generator
    # dependencies cost some 90 µs more per request.
    return pace_for(session)


@dataclass(frozen=True)
class SecretAttempt:
    """An attempt at a secret, taken from its counters before the secret is checked."""

    session: AsyncSession
    settings: Settings
    subjects: list[Subject]
    known: str
    pace: Pace

    def failed(self) -> None:
        """Counted already; a wrong secret is always answered late (gematik: delay on failure)."""
        self.pace.slow_down(self.settings.throttle_delay_seconds)

    async def succeeded(self) -> None:
        """Give the attempt back and remember this (client, address) pair as known."""
        await give_back(
            self.session,
            self.subjects,
            known=self.known,
            known_seconds=self.settings.throttle_known_pair_seconds,
        )


async def take_secret(
    session: AsyncSession, settings: Settings, *, client_id: str, address: str, pace: Pace
) -> SecretAttempt:
    """Count an attempt at this client's secret from this address: 429 past the limit, unless
    the pair is known (the owner signed in from here lately); slowed near it."""
    subjects = secret_subjects(settings, client_id=client_id, address=address)
    known = known_key(client_id, address)
    found, is_known = await take(session, subjects, known=known)
    if found.blocked and not is_known:
        raise refuse(found)
    if found.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    return SecretAttempt(session, settings, subjects, known, pace)


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
    pace: Pace

    async def failed(self, *, refused_with_error: bool) -> None:
        """Count this failure (and delay its answer, gematik's rule for a wrong access code).

        When the caller answers with an error, the request's transaction rolls back, so the
        count is written after the rollback in a transaction of its own; when it answers with
        a page (the transaction commits), it is counted right here.
        """
        self.pace.slow_down(self.settings.throttle_delay_seconds)
        if not refused_with_error:
            await count_failure(self.session, self.subjects)
            return

        async def work(fresh: AsyncSession) -> None:
            await count_failure(fresh, self.subjects)

        on_rollback(self.session, work)


async def guard(session: AsyncSession, settings: Settings, subjects: list[Subject], pace: Pace) -> Attempt:
    """Judge a guess of an authenticated caller before it is checked: 429 when blocked."""
    found = await verdict(session, settings, subjects)
    if found.blocked:
        raise refuse(found)
    if found.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    return Attempt(session, settings, subjects, pace)


PaceDep = Annotated[Pace, Depends(_pace)]


async def purge_stale(session: AsyncSession, settings: Settings, *, now: datetime, limit: int) -> int:
    """Delete up to `limit` counters whose window has passed (they count nothing any more)."""
    del settings  # every row carries its own end
    stale = select(TABLE.c.key).where(TABLE.c.expires_at <= now).limit(limit)
    result = await session.execute(delete(TABLE).where(TABLE.c.key.in_(stale.scalar_subquery())))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "Attempt",
    "Pace",
    "PaceDep",
    "Subject",
    "ThrottleCounter",
    "Verdict",
    "address_key",
    "client_key",
    "count_failure",
    "give_back",
    "guard",
    "known_key",
    "lookup_subjects",
    "pace_for",
    "pair_key",
    "purge_stale",
    "refuse",
    "secret_subjects",
    "take",
    "verdict",
]
