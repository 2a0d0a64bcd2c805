"""Queries of dispenses and their lines; nothing here commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.database import insert_with_lines
from pharmacy_gateway.dispensing.models import Dispense, DispenseLine


async def get_dispense(session: AsyncSession, *, dispense_id: str, pharmacy_id: int) -> Dispense | None:
    """One pharmacy's dispense by its public id; another pharmacy's is never found."""
    result = await session.execute(
        select(Dispense).where(
            col(Dispense.dispense_id) == dispense_id, col(Dispense.pharmacy_id) == pharmacy_id
        )
    )
    return result.scalar_one_or_none()


DISPENSE = Dispense.__table__  # type: ignore[attr-defined]
LINE = DispenseLine.__table__  # type: ignore[attr-defined]


async def add_dispense(
    session: AsyncSession, dispense: dict[str, Any], lines: Sequence[dict[str, Any]]
) -> int:
    """Insert a dispense and its lines (which carry its prescription's code); return its row id.

    One round trip on PostgreSQL, two on SQLite (`kit.database.insert_with_lines`).
    """
    code = dispense["prescription_code"]
    rows = [line | {"prescription_code": code} for line in lines]
    new_id = await insert_with_lines(session, DISPENSE, dispense, LINE, "dispense_id", rows)
    assert new_id is not None
    return new_id


async def lines_of(
    session: AsyncSession, dispense_ids: Sequence[int], *, prescription_code: str | None = None
) -> dict[int, list[DispenseLine]]:
    """Lines of these dispenses; of one prescription's (one shard on Citus) when its code is given."""
    if not dispense_ids:
        return {}
    stmt = select(DispenseLine).where(col(DispenseLine.dispense_id).in_(dispense_ids))
    if prescription_code is not None:
        stmt = stmt.where(col(DispenseLine.prescription_code) == prescription_code)
    result = await session.execute(stmt.order_by(col(DispenseLine.dispense_id), col(DispenseLine.position)))
    grouped: dict[int, list[DispenseLine]] = defaultdict(list)
    for line in result.scalars():
        grouped[line.dispense_id].append(line)
    return grouped


async def mark_voided(
    session: AsyncSession, *, dispense_pk: int, prescription_code: str, reason: str, at: datetime
) -> bool:
    """Void once: a concurrent second void finds the row already voided and changes nothing."""
    result = await session.execute(
        update(Dispense)
        .where(
            col(Dispense.prescription_code) == prescription_code,
            col(Dispense.id) == dispense_pk,
            col(Dispense.voided_at).is_(None),
        )
        .values(voided_at=at, void_reason=reason)
        .returning(col(Dispense.id))
    )
    return result.first() is not None


async def history(
    session: AsyncSession,
    *,
    pharmacy_id: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[int, list[Dispense]]:
    stmt = select(Dispense).where(col(Dispense.pharmacy_id) == pharmacy_id)
    if since is not None:
        stmt = stmt.where(col(Dispense.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(Dispense.created_at) < until)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(
        stmt.order_by(col(Dispense.created_at).desc(), col(Dispense.id).desc()).limit(limit).offset(offset)
    )
    return int(total), list(rows.scalars())


async def paid_prices(
    session: AsyncSession, *, registration_no: str, since: datetime
) -> list[tuple[int, int]]:
    """(pharmacy id, unit price) of every priced, non-voided sale of one product since `since`."""
    result = await session.execute(
        select(col(Dispense.pharmacy_id), col(DispenseLine.unit_price))
        .join(Dispense, col(Dispense.id) == col(DispenseLine.dispense_id))
        .where(
            col(DispenseLine.registration_no) == registration_no,
            col(DispenseLine.unit_price).is_not(None),
            col(Dispense.voided_at).is_(None),
            col(Dispense.created_at) >= since,
        )
    )
    return [(int(pharmacy_id), int(price)) for pharmacy_id, price in result.all() if price is not None]


async def dispenses_of_prescription(
    session: AsyncSession, prescription_id: int, *, code: str
) -> list[Dispense]:
    """Every dispense of one prescription by any pharmacy, oldest first, voided ones included."""
    result = await session.execute(
        select(Dispense)
        .where(col(Dispense.prescription_code) == code, col(Dispense.prescription_id) == prescription_id)
        .order_by(col(Dispense.created_at), col(Dispense.id))
    )
    return list(result.scalars())


async def dispense_with_id_prefix(session: AsyncSession, *, pharmacy_id: int, prefix: str) -> Dispense | None:
    """One pharmacy's dispense whose public id starts with `prefix` (a short receipt number).

    A range, not LIKE, so the unique index on `dispense_id` serves it under any collation.
    """
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    result = await session.execute(
        select(Dispense)
        .where(
            col(Dispense.dispense_id) >= prefix,
            col(Dispense.dispense_id) < after,
            col(Dispense.pharmacy_id) == pharmacy_id,
        )
        .order_by(col(Dispense.created_at).desc())
        .limit(1)
    )
    return result.scalar_one_or_none()
