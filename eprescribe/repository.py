"""Queries of the registry and of prescriptions; nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.models import (
    AdminClient,
    Drug,
    Facility,
    Pharmacy,
    Prescriber,
    PrescriberFacility,
    Prescription,
    PrescriptionItem,
    PrescriptionStatus,
)
from erx.text import fold


async def get_admin(session: AsyncSession, client_id: str) -> AdminClient | None:
    return await session.get(AdminClient, client_id)


async def get_facility(session: AsyncSession, facility_code: str) -> Facility | None:
    return await session.get(Facility, facility_code)


async def get_prescriber(session: AsyncSession, prescriber_id: str) -> Prescriber | None:
    return await session.get(Prescriber, prescriber_id)


async def prescriber_by_license(session: AsyncSession, license_no: str) -> Prescriber | None:
    result = await session.execute(select(Prescriber).where(Prescriber.license_no == license_no))  # type: ignore[arg-type]
    return result.scalar_one_or_none()


async def prescriber_works_at(session: AsyncSession, prescriber_id: str, facility_code: str) -> bool:
    link = await session.get(PrescriberFacility, (prescriber_id, facility_code))
    return link is not None


async def prescriber_facilities(session: AsyncSession, prescriber_id: str) -> list[str]:
    result = await session.execute(
        select(PrescriberFacility.facility_code).where(
            PrescriberFacility.prescriber_id == prescriber_id  # type: ignore[arg-type]
        )
    )
    return list(result.scalars())


async def existing_facility_codes(session: AsyncSession, codes: Sequence[str]) -> set[str]:
    result = await session.execute(
        select(Facility.facility_code).where(Facility.facility_code.in_(codes))  # type: ignore[attr-defined]
    )
    return set(result.scalars())


async def get_pharmacy(session: AsyncSession, connection_code: str) -> Pharmacy | None:
    result = await session.execute(
        select(Pharmacy).where(Pharmacy.connection_code == connection_code)  # type: ignore[arg-type]
    )
    return result.scalar_one_or_none()


async def get_pharmacy_by_id(session: AsyncSession, pharmacy_id: int) -> Pharmacy | None:
    return await session.get(Pharmacy, pharmacy_id)


async def get_drug(session: AsyncSession, registration_no: str) -> Drug | None:
    result = await session.execute(
        select(Drug).where(Drug.registration_no == registration_no)  # type: ignore[arg-type]
    )
    return result.scalar_one_or_none()


async def drugs_by_registration(session: AsyncSession, numbers: Sequence[str]) -> dict[str, Drug]:
    if not numbers:
        return {}
    result = await session.execute(select(Drug).where(Drug.registration_no.in_(numbers)))  # type: ignore[attr-defined]
    return {d.registration_no: d for d in result.scalars()}


async def categories_for(
    session: AsyncSession, ingredient_key: str, strength_key: str, form_key: str
) -> set[str]:
    result = await session.execute(
        select(Drug.category)
        .where(
            Drug.ingredient_key == ingredient_key,  # type: ignore[arg-type]
            Drug.strength_key == strength_key,  # type: ignore[arg-type]
            Drug.form_key == form_key,  # type: ignore[arg-type]
        )
        .distinct()
    )
    return set(result.scalars())


async def substitutes(
    session: AsyncSession, ingredient_key: str, strength_key: str, form_key: str
) -> list[Drug]:
    result = await session.execute(
        select(Drug)
        .where(
            Drug.ingredient_key == ingredient_key,  # type: ignore[arg-type]
            Drug.strength_key == strength_key,  # type: ignore[arg-type]
            Drug.form_key == form_key,  # type: ignore[arg-type]
        )
        .order_by(Drug.declared_price.nulls_last(), Drug.name)  # type: ignore[union-attr]
    )
    return list(result.scalars())


async def search_drugs(
    session: AsyncSession, q: str | None, category: str | None, limit: int, offset: int
) -> tuple[int, list[Drug]]:
    stmt = select(Drug)
    if q:
        terms = [t for t in fold(q).split(" ") if t]
        for term in terms:
            stmt = stmt.where(
                or_(
                    Drug.search_text.contains(term, autoescape=True),  # type: ignore[attr-defined]
                    func.lower(Drug.registration_no).contains(term, autoescape=True),
                )
            )
    if category:
        stmt = stmt.where(Drug.category == category)  # type: ignore[arg-type]
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Drug.name, Drug.id).limit(limit).offset(offset))
    return int(total), list(rows.scalars())


async def get_prescription(session: AsyncSession, code: str) -> Prescription | None:
    result = await session.execute(select(Prescription).where(Prescription.code == code))  # type: ignore[arg-type]
    return result.scalar_one_or_none()


async def prescription_exists(session: AsyncSession, code: str) -> bool:
    result = await session.execute(select(Prescription.id).where(Prescription.code == code))  # type: ignore[arg-type, call-overload]
    return result.first() is not None


async def payload_seen(session: AsyncSession, digest: str) -> bool:
    result = await session.execute(
        select(Prescription.id).where(Prescription.payload_digest == digest)  # type: ignore[arg-type, call-overload]
    )
    return result.first() is not None


async def items_of(session: AsyncSession, prescription_id: int) -> list[PrescriptionItem]:
    result = await session.execute(
        select(PrescriptionItem)
        .where(PrescriptionItem.prescription_id == prescription_id)  # type: ignore[arg-type]
        .order_by(PrescriptionItem.line_no)  # type: ignore[arg-type]
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def mark_replaced(
    session: AsyncSession, *, prescription_id: int, replaced_by: str
) -> bool:
    """Replace only a prescription that is still untouched; atomic against a dispense."""
    result = await session.execute(
        update(Prescription)
        .where(
            Prescription.id == prescription_id,  # type: ignore[arg-type]
            Prescription.status == PrescriptionStatus.ACTIVE,  # type: ignore[arg-type]
        )
        .values(status=PrescriptionStatus.REPLACED, replaced_by_code=replaced_by)
        .returning(Prescription.id)  # type: ignore[arg-type]
    )
    return result.first() is not None


async def mark_cancelled(
    session: AsyncSession, *, prescription_id: int, reason: str, at: datetime
) -> bool:
    """Cancel only while nothing is dispensed (status still `active`), in one statement."""
    result = await session.execute(
        update(Prescription)
        .where(
            Prescription.id == prescription_id,  # type: ignore[arg-type]
            Prescription.status == PrescriptionStatus.ACTIVE,  # type: ignore[arg-type]
        )
        .values(status=PrescriptionStatus.CANCELLED, cancelled_at=at, cancel_reason=reason)
        .returning(Prescription.id)  # type: ignore[arg-type]
    )
    return result.first() is not None


async def recent_for_prescriber(
    session: AsyncSession, prescriber_id: str, facility_code: str, limit: int
) -> list[Prescription]:
    result = await session.execute(
        select(Prescription)
        .where(
            Prescription.prescriber_id == prescriber_id,  # type: ignore[arg-type]
            Prescription.facility_code == facility_code,  # type: ignore[arg-type]
        )
        .order_by(Prescription.issued_at.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    return list(result.scalars())
