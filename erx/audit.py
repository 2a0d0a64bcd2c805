"""The access log: every read or change of a prescription, by anyone, is written here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from erx.database import UTCDateTime, bigint_pk, on_rollback, utcnow


class AccessLogEntry(SQLModel, table=True):
    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_prescription_code_at", "prescription_code", "at"),)

    id: int | None = Field(default=None, sa_column=bigint_pk())
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    prescription_code: str = Field(sa_column=Column(String(14), nullable=False))
    actor_kind: str = Field(max_length=16)
    actor_code: str = Field(max_length=64)
    action: str = Field(max_length=32)
    client_address: str | None = Field(default=None, max_length=64)


async def record_access(
    session: AsyncSession,
    *,
    prescription_code: str,
    actor_kind: str,
    actor_code: str,
    action: str,
    client_address: str | None = None,
    at: datetime | None = None,
    durable: bool = False,
) -> None:
    """Add one entry to the log in the caller's transaction.

    `durable=True` keeps the entry even when the request is refused and its transaction rolls
    back (a denied read, an unknown code): it is then written again in a transaction of its own.
    """
    moment = at or utcnow()

    def entry() -> AccessLogEntry:
        return AccessLogEntry(
            at=moment,
            prescription_code=prescription_code,
            actor_kind=actor_kind,
            actor_code=actor_code,
            action=action,
            client_address=client_address,
        )

    session.add(entry())
    await session.flush()
    if durable:

        async def rewrite(fresh: AsyncSession) -> None:
            fresh.add(entry())

        on_rollback(session, rewrite)


async def record_access_durably(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    prescription_code: str,
    actor_kind: str,
    actor_code: str,
    action: str,
    client_address: str | None = None,
) -> None:
    """Write an entry in its own transaction, outside any request.

    Inside a request use `record_access(..., durable=True)`: on SQLite a second transaction
    opened during the request's own would wait forever on the request's write lock.
    """
    async with sessionmaker() as session, session.begin():
        await record_access(
            session,
            prescription_code=prescription_code,
            actor_kind=actor_kind,
            actor_code=actor_code,
            action=action,
            client_address=client_address,
        )


async def entries_for(session: AsyncSession, prescription_code: str) -> list[AccessLogEntry]:
    result = await session.execute(
        select(AccessLogEntry)
        .where(AccessLogEntry.prescription_code == prescription_code)  # type: ignore[arg-type]
        .order_by(AccessLogEntry.at, AccessLogEntry.id)  # type: ignore[arg-type]
    )
    return list(result.scalars())
