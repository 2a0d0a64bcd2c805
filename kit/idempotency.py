"""Idempotency keys: a retry gets the first answer, even when it races the original."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, Text, UniqueConstraint, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from kit.database import UTCDateTime, bigint_pk
from kit.errors import BadRequest, Conflict
from kit.prepared import Prepared
from kit.time import utcnow

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


TABLE = IdempotencyRecord.__table__  # type: ignore[attr-defined]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


@dataclass(frozen=True)
class Answer:
    """The status and JSON body a request was answered with (and a retry is answered with again)."""

    status_code: int
    body: dict[str, Any]


Work = Callable[[], Awaitable[Answer]]


async def run_once(
    session: AsyncSession, *, scope: str, key: str | None, fingerprint: Any, work: Work
) -> Answer:
    """Do `work` once per (scope, key): a retry with the same key and request gets the first answer.

    The reservation is an INSERT in the request's own transaction: a concurrent retry's INSERT
    waits on the unique index until the first commits (then it replays the stored answer) or
    rolls back (then it does the work itself). A failed request leaves no reservation behind.
    Without a key the work simply runs.
    """
    if key is None:
        return await work()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    request_hash = request_fingerprint(fingerprint)
    record_id = await _reserve(session, scope, key, request_hash)
    if record_id is None:
        return await _replay(session, scope, key, request_hash)
    answer = await work()
    body = json.dumps(answer.body, default=str)
    params = {"r_scope": scope, "r_id": record_id, "r_status": answer.status_code, "r_body": body}
    await _COMPLETE.rows(session, params)
    return answer


def _reserve_on(dialect_insert: Any) -> Any:
    return (
        dialect_insert(TABLE)
        .values(
            scope=bindparam("r_scope"),
            key=bindparam("r_key"),
            request_hash=bindparam("r_hash"),
            created_at=bindparam("r_at", type_=TABLE.c.created_at.type),
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(TABLE.c.id)
    )


# Built once: every idempotent request reserves and completes. Parameter names no column has
# (an UPDATE would take a column-named parameter as a SET).
_RESERVE = Prepared(_reserve_on(postgresql.insert), elsewhere=_reserve_on(sqlite.insert))
_COMPLETE = Prepared(
    update(TABLE)
    # The scope too: on Citus it is the distribution column, so the update stays on one shard.
    .where(TABLE.c.scope == bindparam("r_scope"), TABLE.c.id == bindparam("r_id"))
    .values(status_code=bindparam("r_status"), response_body=bindparam("r_body"))
)


async def _reserve(session: AsyncSession, scope: str, key: str, request_hash: str) -> int | None:
    params = {"r_scope": scope, "r_key": key, "r_hash": request_hash, "r_at": utcnow()}
    inserted = await _RESERVE.first(session, params)
    return None if inserted is None else int(inserted[0])


async def _replay(session: AsyncSession, scope: str, key: str, request_hash: str) -> Answer:
    existing = (
        await session.execute(
            select(TABLE.c.request_hash, TABLE.c.status_code, TABLE.c.response_body).where(
                TABLE.c.scope == scope, TABLE.c.key == key
            )
        )
    ).one()
    if existing.request_hash != request_hash:
        raise Conflict("This Idempotency-Key was already used with a different request body")
    if existing.status_code is None or existing.response_body is None:
        raise Conflict("A request with this Idempotency-Key is still being processed")
    return Answer(status_code=int(existing.status_code), body=json.loads(existing.response_body))


async def purge_before(session: AsyncSession, cutoff: datetime, *, limit: int) -> int:
    """Delete up to `limit` records made before `cutoff` (their retries no longer replay)."""
    oldest = select(TABLE.c.id).where(TABLE.c.created_at < cutoff).limit(limit)
    result = await session.execute(delete(TABLE).where(TABLE.c.id.in_(oldest.scalar_subquery())))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["Answer", "IdempotencyRecord", "purge_before", "request_fingerprint", "run_once"]
