"""Prescriptions as the rest of the system reads them: records built from the joined
header-and-lines rows of the repository, and the one read by code everyone starts from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import repository
from eprescribe.prescriptions.schemas import Line, PatientRecord, PrescriptionRecord

if TYPE_CHECKING:
    from kit.database import AnyRow

HEADER_WIDTH = len(repository.HEADER)


def _line_of(c: tuple[Any, ...]) -> Line:
    return Line(
        line_no=c[0],
        active_ingredient=c[1],
        strength=c[2],
        dosage_form=c[3],
        registration_no=c[4],
        quantity=c[5],
        unit=c[6],
        instructions=c[7],
        days_supply=c[8],
        dispensed=c[9],
        remaining=c[10],
        key=(c[11], c[12], c[13]),
    )


def from_rows(rows: list[AnyRow]) -> PrescriptionRecord | None:
    """A record from the joined header-and-lines rows of `repository.with_lines`."""
    if not rows:
        return None
    return header_record(tuple(rows[0]), tuple(_line_of(tuple(r[HEADER_WIDTH:])) for r in rows))


def header_record(h: tuple[Any, ...], lines: tuple[Line, ...]) -> PrescriptionRecord:
    return PrescriptionRecord(
        id=h[0],
        code=h[1],
        kind=h[2],
        status=h[3],
        facility_code=h[4],
        prescriber_id=h[5],
        prescriber_name=h[6],
        facility_name=h[7],
        issued_at=h[8],
        valid_until=h[9],
        replaces_code=h[10],
        replaced_by_code=h[11],
        patient=PatientRecord(
            full_name=h[12],
            date_of_birth=h[13],
            gender=h[14],
            national_id=h[15],
            insurance_no=h[16],
            weight_kg=h[17],
            phone=h[18],
            address=h[19],
            guardian=h[20],
        ),
        diagnoses=h[21],
        notes=h[22],
        follow_up_date=h[23],
        sensitive=h[24],
        lines=lines,
    )


async def find(session: AsyncSession, code: str) -> PrescriptionRecord | None:
    """The prescription with this canonical code, whoever asks (the caller decides who may see it)."""
    return from_rows(await repository.with_lines(session, code))
