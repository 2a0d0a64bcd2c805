"""Queries of the registry and of prescriptions; nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

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
    result = await session.execute(select(Prescriber).where(col(Prescriber.license_no) == license_no))
    return result.scalar_one_or_none()


async def prescriber_works_at(session: AsyncSession, prescriber_id: str, facility_code: str) -> bool:
    link = await session.get(PrescriberFacility, (prescriber_id, facility_code))
    return link is not None


async def prescriber_facilities(session: AsyncSession, prescriber_id: str) -> list[str]:
    result = await session.execute(
        select(col(PrescriberFacility.facility_code)).where(
            col(PrescriberFacility.prescriber_id) == prescriber_id
        )
    )
    return list(result.scalars())


async def existing_facility_codes(session: AsyncSession, codes: Sequence[str]) -> set[str]:
    result = await session.execute(
        select(col(Facility.facility_code)).where(col(Facility.facility_code).in_(codes))
    )
    return set(result.scalars())


async def get_pharmacy(session: AsyncSession, connection_code: str) -> Pharmacy | None:
    result = await session.execute(select(Pharmacy).where(col(Pharmacy.connection_code) == connection_code))
    return result.scalar_one_or_none()


async def get_pharmacy_by_id(session: AsyncSession, pharmacy_id: int) -> Pharmacy | None:
    return await session.get(Pharmacy, pharmacy_id)


async def get_drug(session: AsyncSession, registration_no: str) -> Drug | None:
    result = await session.execute(select(Drug).where(col(Drug.registration_no) == registration_no))
    return result.scalar_one_or_none()


async def drugs_by_registration(session: AsyncSession, numbers: Sequence[str]) -> dict[str, Drug]:
    if not numbers:
        return {}
    result = await session.execute(select(Drug).where(col(Drug.registration_no).in_(numbers)))
    return {d.registration_no: d for d in result.scalars()}


async def categories_for(
    session: AsyncSession, ingredient_key: str, strength_key: str, form_key: str
) -> set[str]:
    result = await session.execute(
        select(col(Drug.category))
        .where(
            col(Drug.ingredient_key) == ingredient_key,
            col(Drug.strength_key) == strength_key,
            col(Drug.form_key) == form_key,
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
            col(Drug.ingredient_key) == ingredient_key,
            col(Drug.strength_key) == strength_key,
            col(Drug.form_key) == form_key,
        )
        .order_by(col(Drug.declared_price).nulls_last(), col(Drug.name))
    )
    return list(result.scalars())


async def substitutes_by_keys(
    session: AsyncSession, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], list[Drug]]:
    """Products per (ingredient, strength, form) key, in one query, cheapest declared price first."""
    found: dict[tuple[str, str, str], list[Drug]] = {key: [] for key in keys}
    if not keys:
        return found
    result = await session.execute(
        select(Drug)
        .where(tuple_(col(Drug.ingredient_key), col(Drug.strength_key), col(Drug.form_key)).in_(list(found)))
        .order_by(col(Drug.declared_price).nulls_last(), col(Drug.name))
    )
    for drug in result.scalars():
        found[(drug.ingredient_key, drug.strength_key, drug.form_key)].append(drug)
    return found


async def search_drugs(
    session: AsyncSession, q: str | None, category: str | None, limit: int, offset: int
) -> tuple[int, list[Drug]]:
    stmt = select(Drug)
    if q:
        terms = [t for t in fold(q).split(" ") if t]
        for term in terms:
            stmt = stmt.where(
                or_(
                    col(Drug.search_text).contains(term, autoescape=True),
                    func.lower(col(Drug.registration_no)).contains(term, autoescape=True),
                )
            )
    if category:
        stmt = stmt.where(col(Drug.category) == category)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(col(Drug.name), col(Drug.id)).limit(limit).offset(offset))
    return int(total), list(rows.scalars())


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
        .where(
            col(Prescription.id) == prescription_id,
            col(Prescription.status) == PrescriptionStatus.ACTIVE,
        )
        .values(status=PrescriptionStatus.REPLACED, replaced_by_code=replaced_by)
        .returning(col(Prescription.id))
    )
    return result.first() is not None


async def mark_cancelled(session: AsyncSession, *, prescription_id: int, reason: str, at: datetime) -> bool:
    """Cancel only while nothing is dispensed (status still `active`), in one statement."""
    result = await session.execute(
        update(Prescription)
        .where(
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
    statuses: Sequence[str] | None = None,
    valid_at: datetime | None = None,
) -> Prescription | None:
    """SELECT ... FOR UPDATE the prescription row, optionally only in `statuses` and still valid."""
    stmt = select(Prescription).where(col(Prescription.id) == prescription_id)
    if statuses is not None:
        stmt = stmt.where(col(Prescription.status).in_(statuses))
    if valid_at is not None:
        stmt = stmt.where(col(Prescription.valid_until) >= valid_at)
    result = await session.execute(stmt.with_for_update().execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def shift_quantity(
    session: AsyncSession, prescription_id: int, line_no: int, delta: int
) -> tuple[int, int] | None:
    """Move `delta` units from remaining to dispensed (negative: back) in one conditional UPDATE.

    The WHERE clause is the guard: neither counter may go below zero, whatever runs at the
    same time. Returns (dispensed, remaining) after the move, or None when it would not fit.
    """
    remaining, dispensed = col(PrescriptionItem.remaining), col(PrescriptionItem.dispensed)
    result = await session.execute(
        update(PrescriptionItem)
        .where(
            col(PrescriptionItem.prescription_id) == prescription_id,
            col(PrescriptionItem.line_no) == line_no,
            remaining >= delta,
            dispensed >= -delta,
        )
        .values(remaining=remaining - delta, dispensed=dispensed + delta)
        .returning(dispensed, remaining)
    )
    row = result.first()
    return (int(row[0]), int(row[1])) if row else None


async def set_dispensing_status(session: AsyncSession, prescription_id: int, status: str) -> None:
    """Store a status computed from the lines, unless the prescription was cancelled or replaced."""
    await session.execute(
        update(Prescription)
        .where(
            col(Prescription.id) == prescription_id,
            col(Prescription.status).in_(
                [
                    PrescriptionStatus.ACTIVE,
                    PrescriptionStatus.PARTIALLY_DISPENSED,
                    PrescriptionStatus.DISPENSED,
                ]
            ),
        )
        .values(status=status)
    )


async def recent_for_prescriber(
    session: AsyncSession, prescriber_id: str, facility_code: str, limit: int
) -> list[Prescription]:
    result = await session.execute(
        select(Prescription)
        .where(
            col(Prescription.prescriber_id) == prescriber_id,
            col(Prescription.facility_code) == facility_code,
        )
        .order_by(col(Prescription.issued_at).desc())
        .limit(limit)
    )
    return list(result.scalars())


# ---- read by the public price portal (price_portal.service) ---------------------------------


async def drugs_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Drug]:
    if not ids:
        return []
    result = await session.execute(select(Drug).where(col(Drug.id).in_(ids)))
    return list(result.scalars())


async def drugs_matching_words(
    session: AsyncSession, terms: Sequence[str], category: str | None, limit: int
) -> list[Drug]:
    """Products whose folded text has a word starting with each term (digits: anywhere)."""
    stmt = select(Drug)
    for term in terms:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if any(ch.isdigit() for ch in term):
            stmt = stmt.where(col(Drug.search_text).like(f"%{escaped}%", escape="\\"))
        else:
            stmt = stmt.where(
                or_(
                    col(Drug.search_text).like(f"{escaped}%", escape="\\"),
                    col(Drug.search_text).like(f"% {escaped}%", escape="\\"),
                )
            )
    if category:
        stmt = stmt.where(col(Drug.category) == category)
    result = await session.execute(stmt.order_by(col(Drug.name), col(Drug.id)).limit(limit))
    return list(result.scalars())


async def drugs_similar_words(
    session: AsyncSession, terms: Sequence[str], category: str | None, limit: int
) -> list[Drug]:
    """PostgreSQL with pg_trgm: products whose text holds a word similar to every term."""
    stmt = select(Drug)
    for term in terms:
        # `text %> term` is word_similarity(term, text) >= pg_trgm.word_similarity_threshold
        # (0.6 by default), and the GIN trigram index on search_text serves it.
        stmt = stmt.where(col(Drug.search_text).bool_op("%>")(term))
    if category:
        stmt = stmt.where(col(Drug.category) == category)
    if terms:
        score: ColumnElement[float] = func.word_similarity(terms[0], col(Drug.search_text))
        for term in terms[1:]:
            score = score + func.word_similarity(term, col(Drug.search_text))
        stmt = stmt.order_by(score.desc())
    result = await session.execute(stmt.order_by(col(Drug.name), col(Drug.id)).limit(limit))
    return list(result.scalars())


async def trigram_search_available(session: AsyncSession) -> bool:
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return False
    result = await session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    return result.first() is not None


async def drug_search_texts(session: AsyncSession, category: str | None) -> list[tuple[int, str]]:
    stmt = select(Drug.id, Drug.search_text)  # type: ignore[call-overload]
    if category:
        stmt = stmt.where(Drug.category == category)
    result = await session.execute(stmt)
    return [(int(row[0]), str(row[1])) for row in result]


def drug_ids_in_category_query(category: str) -> Select[int]:
    return select(Drug.id).where(Drug.category == category)  # type: ignore[call-overload, no-any-return]


async def pharmacies_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Pharmacy]:
    if not ids:
        return []
    result = await session.execute(select(Pharmacy).where(Pharmacy.id.in_(ids)))  # type: ignore[union-attr]
    return list(result.scalars())


def inactive_pharmacy_ids_query() -> Select[int]:
    return select(Pharmacy.id).where(Pharmacy.status != "active")  # type: ignore[call-overload, no-any-return]


async def pharmacies_with_code_prefix(session: AsyncSession, prefix: str) -> list[Pharmacy]:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result = await session.execute(
        select(Pharmacy)
        .where(Pharmacy.connection_code.like(f"{escaped}%", escape="\\"))  # type: ignore[attr-defined]
        .order_by(Pharmacy.id)  # type: ignore[arg-type]
    )
    return list(result.scalars())


async def insert_pharmacies(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Insert many registry rows in one multi-row statement (demo and bench data)."""
    if rows:
        await session.execute(Pharmacy.__table__.insert(), list(rows))  # type: ignore[attr-defined]


# ---- read by the browser consoles (eprescribe.console) -------------------------------------


async def prescribers_at_facility(session: AsyncSession, facility_code: str) -> list[Prescriber]:
    result = await session.execute(
        select(Prescriber)
        .join(PrescriberFacility, col(PrescriberFacility.prescriber_id) == col(Prescriber.prescriber_id))
        .where(col(PrescriberFacility.facility_code) == facility_code)
        .order_by(col(Prescriber.full_name), col(Prescriber.prescriber_id))
    )
    return list(result.scalars())


async def inactive_pharmacy_ids(session: AsyncSession, limit: int) -> list[int]:
    result = await session.execute(inactive_pharmacy_ids_query().limit(limit))
    return [int(i) for i in result.scalars()]


async def drug_ids_in_category(session: AsyncSession, category: str, limit: int) -> list[int]:
    result = await session.execute(drug_ids_in_category_query(category).limit(limit))
    return [int(i) for i in result.scalars()]
