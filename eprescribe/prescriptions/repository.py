"""Queries of prescriptions and their lines; nothing here commits."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from eprescribe.prescriptions.models import Prescription, PrescriptionItem
from eprescribe.prescriptions.schemas import LEDGER_STATUSES, PrescriptionStatus


async def get_prescription(session: AsyncSession, code: str) -> Prescription | None:
    result = await session.execute(select(Prescription).where(col(Prescription.code) == code))
    return result.scalar_one_or_none()


async def prescription_exists(session: AsyncSession, code: str) -> bool:
    result = await session.execute(select(col(Prescription.id)).where(col(Prescription.code) == code))
    return result.first() is not None


async def payload_seen(session: AsyncSession, digest: str) -> bool:
    result = await session.execute(
        select(col(Prescription.id)).where(col(Prescription.payload_digest) == digest)
    )
    return result.first() is not None


async def items_of(session: AsyncSession, prescription_id: int) -> list[PrescriptionItem]:
    result = await session.execute(
        select(PrescriptionItem)
        .where(col(PrescriptionItem.prescription_id) == prescription_id)
        .order_by(col(PrescriptionItem.line_no))
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def mark_replaced(session: AsyncSession, *, prescription_id: int, replaced_by: str) -> bool:
    """Replace only a prescription that is still untouched; atomic against a dispense."""
    result = await session.execute(
        update(Prescription)
        .where(col(Prescription.id) == prescription_id, col(Prescription.status) == PrescriptionStatus.ACTIVE)
        .values(status=PrescriptionStatus.REPLACED, replaced_by_code=replaced_by)
        .returning(col(Prescription.id))
    )
    return result.first() is not None


async def mark_cancelled(session: AsyncSession, *, prescription_id: int, reason: str, at: datetime) -> bool:
    """Cancel only while nothing is dispensed (status still `active`), in one statement."""
    result = await session.execute(
        update(Prescription)
        .where(col(Prescription.id) == prescription_id, col(Prescription.status) == PrescriptionStatus.ACTIVE)
        .values(status=PrescriptionStatus.CANCELLED, cancelled_at=at, cancel_reason=reason)
        .returning(col(Prescription.id))
    )
    return result.first() is not None


async def lock_prescription(
    session: AsyncSession,
    prescription_id: int,
    *,
    statuses: Collection[str] | None = None,
    valid_at: datetime | None = None,
) -> Prescription | None:
    """SELECT ... FOR UPDATE the prescription row, optionally only in `statuses` and still valid.

    PostgreSQL re-checks the WHERE clause on the row it finds after waiting for the lock.
    """
    stmt = select(Prescription).where(col(Prescription.id) == prescription_id)
    if statuses is not None:
        stmt = stmt.where(col(Prescription.status).in_(list(statuses)))
    if valid_at is not None:
        stmt = stmt.where(col(Prescription.valid_until) >= valid_at)
    result = await session.execute(stmt.with_for_update().execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def shift_quantities(
    session: AsyncSession, prescription_id: int, deltas: Mapping[int, int]
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
            col(PrescriptionItem.prescription_id) == prescription_id,
            line_no.in_(list(deltas)),
            remaining >= delta,
            dispensed >= -delta,
        )
        .values(remaining=remaining - delta, dispensed=dispensed + delta)
        .returning(line_no, dispensed, remaining)
    )
    return {int(row[0]): (int(row[1]), int(row[2])) for row in result.all()}


async def set_ledger_status(session: AsyncSession, prescription_id: int, status: PrescriptionStatus) -> None:
    """Store a status computed from the lines, unless the prescription was cancelled or replaced."""
    await session.execute(
        update(Prescription)
        .where(col(Prescription.id) == prescription_id, col(Prescription.status).in_(list(LEDGER_STATUSES)))
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
    """Insert a prescription, then its lines (which need its id)."""
    session.add(prescription)
    await session.flush()
    assert prescription.id is not None
    for item in items:
        item.prescription_id = prescription.id
    session.add_all(items)
    await session.flush()


async def prescriptions_of_patient(
    session: AsyncSession,
    facility_code: str,
    *,
    national_id: str | None = None,
    insurance_no: str | None = None,
    date_of_birth: date | None = None,
    limit: int,
) -> list[Prescription]:
    """One facility's prescriptions of a patient, newest first, by one identifier (each indexed).

    A name is matched by the caller among the rows of its date of birth.
    """
    stmt = select(Prescription).where(col(Prescription.facility_code) == facility_code)
    if national_id is not None:
        stmt = stmt.where(col(Prescription.patient_national_id) == national_id)
    elif insurance_no is not None:
        stmt = stmt.where(col(Prescription.patient_insurance_no) == insurance_no)
    elif date_of_birth is not None:
        stmt = stmt.where(col(Prescription.patient_date_of_birth) == date_of_birth)
    else:
        return []
    result = await session.execute(stmt.order_by(col(Prescription.issued_at).desc()).limit(limit))
    return list(result.scalars())
