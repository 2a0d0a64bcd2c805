"""Idempotency keys: a retry gets the first answer, even when it races the original."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, Text, UniqueConstraint, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from erx.database import UTCDateTime, bigint_pk, utcnow
from erx.errors import BadRequest, Conflict

MAX_KEY_LENGTH = 128


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: int | None = Field(default=None, sa_column=bigint_pk())
    scope: str = Field(max_length=64)
    key: str = Field(max_length=MAX_KEY_LENGTH)
    request_hash: str = Field(max_length=64)
    status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


@dataclass
class Replay:
    status_code: int
    body: dict[str, Any]


@dataclass
class Claim:
    record_id: int


async def claim(session: AsyncSession, *, scope: str, key: str, request_hash: str) -> Claim | Replay:
    """Reserve `key` for this request, or return the answer already given for it.

    The reservation is an INSERT in the request's own transaction: a concurrent retry's INSERT
    waits on the unique index until the first commits (then it replays the stored answer) or
    rolls back (then it does the work itself). A failed request leaves no reservation behind.
    """
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    stmt = (
        insert_fn(table)
        .values(scope=scope, key=key, request_hash=request_hash, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(table.c.id)
    )
    inserted = (await session.execute(stmt)).scalar_one_or_none()
    if inserted is not None:
        return Claim(record_id=int(inserted))
    existing = (
        await session.execute(
            select(table.c.request_hash, table.c.status_code, table.c.response_body).where(
                table.c.scope == scope, table.c.key == key
            )
        )
    ).one()
    if existing.request_hash != request_hash:
        raise Conflict("This Idempotency-Key was already used with a different request body")
    if existing.status_code is None or existing.response_body is None:
        raise Conflict("A request with this Idempotency-Key is still being processed")
    return Replay(status_code=int(existing.status_code), body=json.loads(existing.response_body))


async def complete(session: AsyncSession, held: Claim, *, status_code: int, body: dict[str, Any]) -> None:
    """Store the answer with the reservation, in the same transaction as the work."""
    table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(table.c.id == held.record_id)
        .values(status_code=status_code, response_body=json.dumps(body, default=str))
    )


__all__ = ["Claim", "IdempotencyRecord", "Replay", "claim", "complete", "request_fingerprint"]
