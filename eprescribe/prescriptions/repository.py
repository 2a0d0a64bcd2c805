"""Queries of prescriptions and their lines; nothing here commits."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from eprescribe.prescriptions.models import Prescription, PrescriptionItem, PrescriptionPayload
from eprescribe.prescriptions.schemas import LEDGER_STATUSES, PrescriptionStatus


async def get_prescription(session: AsyncSession, code: str) -> Prescription | None:
    result = await session.execute(select(Prescription).where(col(Prescription.code) == code))
    return result.scalar_one_or_none()


async def reload(session: AsyncSession, prescription: Prescription) -> Prescription:
    """Read the row again after a statement changed it (by code and id: one shard on Citus)."""
    result = await session.execute(
        select(Prescription)
        .where(col(Prescription.code) == prescription.code, col(Prescription.id) == prescription.id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def prescription_exists(session: AsyncSession, code: str) -> bool:
    result = await session.execute(select(col(Prescription.id)).where(col(Prescription.code) == code))
    return result.first() is not None


async def payload_seen(session: AsyncSession, digest: str) -> bool:
    result = await session.execute(
        select(col(PrescriptionPayload.payload_digest)).where(
            col(PrescriptionPayload.payload_digest) == digest
        )
    )
    return result.first() is not None


# Queries by the prescription's id also name its code: on Citus the code routes them to one shard.
async def items_of(session: AsyncSession, prescription_id: int, *, code: str) -> list[PrescriptionItem]:
    result = await session.execute(
        select(PrescriptionItem)
        .where(
            col(PrescriptionItem.prescription_code) == code,
            col(PrescriptionItem.prescription_id) == prescription_id,
        )
        .order_by(col(PrescriptionItem.line_no))
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def mark_replaced(session: AsyncSession, *, prescription_id: int, code: str, replaced_by: str) -> bool:
    """Replace only a prescription that is still untouched; atomic against a dispense."""
    result = await session.execute(
        update(Prescription)
        .where(
            col(Prescription.code) == code,
            col(Prescription.id) == prescription_id,
            col(Prescription.status) == PrescriptionStatus.ACTIVE,
        )
        .values(status=PrescriptionStatus.REPLACED, replaced_by_code=replaced_by)
        .returning(col(Prescription.id))
    )
    return result.first() is not None


async def mark_cancelled(
    session: AsyncSession, *, prescription_id: int, code: str, reason: str, at: datetime
) -> bool:
    """Cancel only while nothing is dispensed (status still `active`), in one statement."""
    result = await session.execute(
        update(Prescription)
        .where(
            col(Prescription.code) == code,
            col(Prescription.id) == prescription_id,
            col(Prescription.status) == PrescriptionStatus.ACTIVE,
        )
        .values(status=PrescriptionStatus.CANCELLED, cancelled_at=at, cancel_reason=reason)
        .returning(col(Prescription.id))
    )
    return result.first() is not None


async def lock_prescription(
    session: AsyncSession,
    prescription_id: int,
    *,
    code: str,
    statuses: Collection[str] | None = None,
    valid_at: datetime | None = None,
) -> Prescription | None:
    """SELECT ... FOR UPDATE the prescription row, optionally only in `statuses` and still valid.

    PostgreSQL re-checks the WHERE clause on the row it finds after waiting for the lock.
    """
    stmt = select(Prescription).where(col(Prescription.code) == code, col(Prescription.id) == prescription_id)
    if statuses is not None:
        stmt = stmt.where(col(Prescription.status).in_(list(statuses)))
    if valid_at is not None:
        stmt = stmt.where(col(Prescription.valid_until) >= valid_at)
    result = await session.execute(stmt.with_for_update().execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def shift_quantities(
    session: AsyncSession, prescription_id: int, deltas: Mapping[int, int], *, code: str
) -> dict[int, tuple[int, int]]:
    """Move `deltas[line_no]` units from remaining to dispensed (negative: back), in one UPDATE.

    The WHERE clause is the guard: a line whose counter would go below zero is not touched and
    not returned, whatever runs at the same time. Returns (dispensed, remaining) per moved line;
    the caller refuses the whole request when a line is missing from it.
    """
    if not deltas:
        return {}
    line_no = col(PrescriptionItem.line_no)
    remaining, dispensed = col(PrescriptionItem.remaining), col(PrescriptionItem.dispensed)
    delta = case(deltas, value=line_no)
    result = await session.execute(
        update(PrescriptionItem)
        .where(
            col(PrescriptionItem.prescription_code) == code,
            col(PrescriptionItem.prescription_id) == prescription_id,
            line_no.in_(list(deltas)),
            remaining >= delta,
            dispensed >= -delta,
        )
        .values(remaining=remaining - delta, dispensed=dispensed + delta)
        .returning(line_no, dispensed, remaining)
    )
    return {int(row[0]): (int(row[1]), int(row[2])) for row in result.all()}


async def set_ledger_status(
    session: AsyncSession, prescription_id: int, status: PrescriptionStatus, *, code: str
) -> None:
    """Store a status computed from the lines, unless the prescription was cancelled or replaced."""
    await session.execute(
        update(Prescription)
        .where(
            col(Prescription.code) == code,
            col(Prescription.id) == prescription_id,
            col(Prescription.status).in_(list(LEDGER_STATUSES)),
        )
        .values(status=status)
    )


async def recent_for_prescriber(
    session: AsyncSession, prescriber_id: str, facility_code: str, limit: int
) -> list[Prescription]:
    result = await session.execute(
        select(Prescription)
        .where(
            col(Prescription.prescriber_id) == prescriber_id, col(Prescription.facility_code) == facility_code
        )
        .order_by(col(Prescription.issued_at).desc())
        .limit(limit)
    )
    return list(result.scalars())


async def add_prescription(
    session: AsyncSession, prescription: Prescription, items: Sequence[PrescriptionItem]
) -> None:
    """Insert a prescription, its payload's digest, then its lines (which need its id)."""
    session.add(prescription)
    session.add(
        PrescriptionPayload(payload_digest=prescription.payload_digest, prescription_code=prescription.code)
    )
    await session.flush()
    assert prescription.id is not None
    for item in items:
        item.prescription_id = prescription.id
        item.prescription_code = prescription.code
    session.add_all(items)
    await session.flush()
