"""A pharmacy's own dispenses read back (its history, a receipt) and what the public side reads of
them (prices paid, what a patient was handed); no HTTP, never commits. Reached through the
dispensing service."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from statistics import median_low

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit.time import vn_time
from pharmacy_gateway.dispensing import repository
from pharmacy_gateway.dispensing.exceptions import DispenseNotFound
from pharmacy_gateway.dispensing.models import Dispense, DispenseLine
from pharmacy_gateway.dispensing.schemas import (
    DispensedLineView,
    DispensePage,
    DispenseView,
    Pharmacist,
    receipt_id_prefix,
)


def _dispense_view(record: Dispense, lines: list[DispenseLine]) -> DispenseView:
    return DispenseView(
        dispense_id=record.dispense_id,
        prescription_code=record.prescription_code,
        created_at=vn_time(record.created_at),
        pharmacist=Pharmacist(full_name=record.pharmacist_full_name, license_no=record.pharmacist_license_no),
        voided=record.voided_at is not None,
        voided_at=vn_time(record.voided_at) if record.voided_at else None,
        void_reason=record.void_reason,
        items=[
            DispensedLineView(
                line_no=line.line_no,
                registration_no=line.registration_no,
                quantity=line.quantity,
                unit_price=line.unit_price,
                batch_no=line.batch_no,
                expiry_date=line.expiry_date,
            )
            for line in lines
        ],
    )


async def history(
    session: AsyncSession,
    *,
    pharmacy: PharmacyRecord,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> DispensePage:
    """This pharmacy's own dispenses, newest first, voided ones included and flagged."""
    total, records = await repository.history(
        session, pharmacy_id=pharmacy.id, since=since, until=until, limit=limit, offset=offset
    )
    lines = await repository.lines_of(session, [r.id for r in records if r.id is not None])
    return DispensePage(
        total=total,
        limit=limit,
        offset=offset,
        items=[_dispense_view(r, lines.get(r.id or 0, [])) for r in records],
    )


async def own_dispense(session: AsyncSession, *, pharmacy: PharmacyRecord, dispense_id: str) -> DispenseView:
    """Return one of this pharmacy's own dispenses (a receipt); another pharmacy's is never found."""
    record = await repository.get_dispense(session, dispense_id=dispense_id.strip(), pharmacy_id=pharmacy.id)
    if record is None or record.id is None:
        raise DispenseNotFound(dispense_id)
    lines = (await repository.lines_of(session, [record.id], prescription_code=record.prescription_code)).get(
        record.id, []
    )
    return _dispense_view(record, lines)


# ---- what the public side reads ---------------------------------------------------------------


async def paid_price_medians(
    session: AsyncSession, *, registration_no: str, since: datetime
) -> dict[int, tuple[int, int]]:
    """Median unit price actually paid per pharmacy id, and the number of sales, since `since`."""
    prices: dict[int, list[int]] = defaultdict(list)
    for pharmacy_id, unit_price in await repository.paid_prices(
        session, registration_no=registration_no, since=since
    ):
        prices[pharmacy_id].append(unit_price)
    # median_low keeps the answer an integer number of dong that some sale actually paid.
    return {pharmacy_id: (median_low(paid), len(paid)) for pharmacy_id, paid in prices.items()}


@dataclass(frozen=True)
class SoldLine:
    registration_no: str
    quantity: int


@dataclass(frozen=True)
class PatientDispense:
    """A dispense as the patient sees it: where, when, what; never the pharmacist's licence."""

    pharmacy_name: str
    pharmacy_address: str
    created_at: datetime
    voided: bool
    lines: list[SoldLine]


async def dispenses_for_patient(
    session: AsyncSession, prescription_id: int, *, code: str
) -> list[PatientDispense]:
    """List what was handed over against this prescription, by which pharmacy, oldest first."""
    records = await repository.dispenses_of_prescription(session, prescription_id, code=code)
    lines = await repository.lines_of(
        session, [r.id for r in records if r.id is not None], prescription_code=code
    )
    outlets = await registry.pharmacies_by_ids(session, sorted({r.pharmacy_id for r in records}))
    found: list[PatientDispense] = []
    for record in records:
        outlet = outlets.get(record.pharmacy_id)
        found.append(
            PatientDispense(
                pharmacy_name=outlet.name if outlet else "",
                pharmacy_address=outlet.address if outlet else "",
                created_at=record.created_at,
                voided=record.voided_at is not None,
                lines=[
                    SoldLine(line.registration_no, line.quantity) for line in lines.get(record.id or 0, [])
                ],
            )
        )
    return found


async def own_dispense_by_receipt(
    session: AsyncSession, *, pharmacy: PharmacyRecord, receipt_no: str
) -> DispenseView | None:
    """This pharmacy's dispense with the short number printed on its receipt, if there is one."""
    prefix = receipt_id_prefix(receipt_no)
    if prefix is None:
        return None
    record = await repository.dispense_with_id_prefix(session, pharmacy_id=pharmacy.id, prefix=prefix)
    if record is None or record.id is None:
        return None
    lines = (await repository.lines_of(session, [record.id])).get(record.id, [])
    return _dispense_view(record, lines)
