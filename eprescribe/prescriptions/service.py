"""Rules of prescriptions once stored: reading, cancelling, the access log, and the quantity
ledger that dispensing moves. No HTTP here, and nothing commits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import codes, qr, repository
from eprescribe.prescriptions.exceptions import PrescriptionConflict, PrescriptionNotFound
from eprescribe.prescriptions.models import Prescription, PrescriptionItem
from eprescribe.prescriptions.policy import age_in_months
from eprescribe.prescriptions.reference import (
    canonical_code,
    code_from_scanned,
    load_reference_data,
    policy_for_forms,
    qr_svg,
    search_diagnoses,
)
from eprescribe.prescriptions.schemas import (
    DISPENSABLE,
    Line,
    PatientRecord,
    PrescriptionRecord,
    PrescriptionStatus,
    status_at,
)
from eprescribe.prescriptions.submission import submit
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import FacilityRecord, PrescriberRecord
from kit import audit
from kit.audit import AccessAction, ActorKind, Refusal
from kit.security import KeyRing
from kit.text import match_key
from kit.time import utcnow

__all__ = [
    "FacilityRead",
    "LedgerMove",
    "PatientQuery",
    "access_entries",
    "access_log",
    "age_in_months",
    "cancel",
    "canonical_code",
    "code_from_scanned",
    "find",
    "load_reference_data",
    "lock",
    "lock_for_dispensing",
    "move_quantities",
    "names_of",
    "open_for_patient",
    "patient_history",
    "policy_for_forms",
    "qr_matches",
    "qr_svg",
    "read_for_facility",
    "read_for_patient",
    "recent_for_prescriber",
    "record",
    "search_diagnoses",
    "status_at",
    "submit",
]


def _line(item: PrescriptionItem) -> Line:
    return Line(
        line_no=item.line_no,
        active_ingredient=item.active_ingredient,
        strength=item.strength,
        dosage_form=item.dosage_form,
        registration_no=item.registration_no,
        quantity=item.quantity,
        unit=item.unit,
        instructions=item.instructions,
        days_supply=item.days_supply,
        dispensed=item.dispensed,
        remaining=item.remaining,
        key=(item.ingredient_key, item.strength_key, item.form_key),
    )


def record(prescription: Prescription, items: list[PrescriptionItem]) -> PrescriptionRecord:
    """The prescription and its lines as other modules see them."""
    assert prescription.id is not None
    return PrescriptionRecord(
        id=prescription.id,
        code=prescription.code,
        kind=prescription.kind,
        status=prescription.status,
        facility_code=prescription.facility_code,
        prescriber_id=prescription.prescriber_id,
        issued_at=prescription.issued_at,
        valid_until=prescription.valid_until,
        replaces_code=prescription.replaces_code,
        replaced_by_code=prescription.replaced_by_code,
        patient=PatientRecord(
            full_name=prescription.patient_full_name,
            date_of_birth=prescription.patient_date_of_birth,
            gender=prescription.patient_gender,
            national_id=prescription.patient_national_id,
            insurance_no=prescription.patient_insurance_no,
            weight_kg=prescription.patient_weight_kg,
            phone=prescription.patient_phone,
            address=prescription.patient_address,
            guardian=prescription.guardian,
        ),
        diagnoses=prescription.diagnoses,
        notes=prescription.notes,
        follow_up_date=prescription.follow_up_date,
        sensitive=prescription.sensitive,
        lines=tuple(_line(item) for item in items),
    )


async def _record(session: AsyncSession, prescription: Prescription) -> PrescriptionRecord:
    assert prescription.id is not None
    return record(prescription, await repository.items_of(session, prescription.id))


async def names_of(session: AsyncSession, found: PrescriptionRecord) -> tuple[str, str]:
    """The prescriber's and the facility's names, as printed on the prescription."""
    prescriber = await registry.get_prescriber(session, found.prescriber_id)
    facility = await registry.get_facility(session, found.facility_code)
    return (prescriber.full_name if prescriber else "", facility.name if facility else "")


# ---- the issuing facility ---------------------------------------------------------------------


@dataclass
class FacilityRead:
    """Everything the issuing facility may read, the prescriber's JWS included."""

    prescription: Prescription
    items: list[PrescriptionItem]
    prescriber: PrescriberRecord
    status: str


async def _owned(
    session: AsyncSession, facility: FacilityRecord, code_text: str, action: AccessAction, address: str | None
) -> Prescription:
    code = codes.canonical(code_text)
    if code is None:
        raise PrescriptionNotFound(code_text)
    prescription = await repository.get_prescription(session, code)
    if prescription is None or prescription.facility_code != facility.facility_code:
        if prescription is not None:
            # Another facility tried: the owner and the patient get to see that attempt.
            await audit.record_access(
                session,
                prescription_code=code,
                actor_kind=ActorKind.FACILITY,
                actor_code=facility.facility_code,
                action=audit.refused(action, Refusal.DENIED),
                client_address=address,
                durable=True,
            )
        raise PrescriptionNotFound(code)
    return prescription


async def _facility_read(session: AsyncSession, prescription: Prescription) -> FacilityRead:
    assert prescription.id is not None
    prescriber = await registry.get_prescriber(session, prescription.prescriber_id)
    assert prescriber is not None
    return FacilityRead(
        prescription=prescription,
        items=await repository.items_of(session, prescription.id),
        prescriber=prescriber,
        status=status_at(prescription.status, prescription.valid_until, utcnow()),
    )


async def read_for_facility(
    session: AsyncSession,
    facility: FacilityRecord,
    code_text: str,
    *,
    action: AccessAction = AccessAction.READ,
    address: str | None = None,
) -> FacilityRead:
    """Read a prescription this facility issued (another facility's is 404, and logged)."""
    prescription = await _owned(session, facility, code_text, action, address)
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind=ActorKind.FACILITY,
        actor_code=facility.facility_code,
        action=action,
        client_address=address,
    )
    return await _facility_read(session, prescription)


async def cancel(
    session: AsyncSession, facility: FacilityRecord, code_text: str, reason: str, address: str | None
) -> FacilityRead:
    """Cancel a prescription of this facility while nothing of it is dispensed."""
    prescription = await _owned(session, facility, code_text, AccessAction.CANCEL, address)
    assert prescription.id is not None
    if not await repository.mark_cancelled(
        session, prescription_id=prescription.id, reason=reason, at=utcnow()
    ):
        await session.refresh(prescription)
        raise PrescriptionConflict(
            f"{prescription.code} is {prescription.status}; only a prescription with nothing dispensed can be cancelled"
        )
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind=ActorKind.FACILITY,
        actor_code=facility.facility_code,
        action=AccessAction.CANCEL,
        client_address=address,
    )
    await session.refresh(prescription)
    return await _facility_read(session, prescription)


async def access_log(
    session: AsyncSession, facility: FacilityRecord, code_text: str, address: str | None
) -> list[audit.AccessLogEntry]:
    """Who read or changed this facility's prescription (this read included)."""
    prescription = await _owned(session, facility, code_text, AccessAction.READ_ACCESS_LOG, address)
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind=ActorKind.FACILITY,
        actor_code=facility.facility_code,
        action=AccessAction.READ_ACCESS_LOG,
        client_address=address,
    )
    return await audit.entries_for(session, prescription.code)


async def recent_for_prescriber(
    session: AsyncSession, facility: FacilityRecord, prescriber_id: str, limit: int = 20
) -> list[PrescriptionRecord]:
    """A prescriber's latest prescriptions at this facility, newest first (lines not loaded)."""
    found = await repository.recent_for_prescriber(session, prescriber_id, facility.facility_code, limit)
    return [record(p, []) for p in found]


# ---- pharmacies: finding, checking the QR, and the quantity ledger ------------------------------


async def find(session: AsyncSession, code: str) -> PrescriptionRecord | None:
    """The prescription with this canonical code, whoever asks (the caller decides who may see it)."""
    prescription = await repository.get_prescription(session, code)
    return await _record(session, prescription) if prescription else None


def qr_matches(keyring: KeyRing, scanned: str, found: PrescriptionRecord) -> bool:
    """Whether a scanned QR carries the national signature over this prescription as recorded."""
    expected = qr.claims(
        found.code, found.kind, found.facility_code, found.valid_until, qr.lines_digest(found.lines)
    )
    return qr.matches(keyring, scanned, expected)


async def lock_for_dispensing(
    session: AsyncSession, prescription_id: int, now: datetime
) -> PrescriptionRecord | None:
    """Lock the prescription for this transaction if it may still be dispensed; else None.

    Concurrent dispenses, voids, a cancellation or a replacement of the same prescription queue
    on this lock, and the lines read after it are the ones the ledger then moves.
    """
    prescription = await repository.lock_prescription(
        session, prescription_id, statuses=DISPENSABLE, valid_at=now
    )
    return await _record(session, prescription) if prescription else None


async def lock(session: AsyncSession, prescription_id: int) -> PrescriptionRecord | None:
    """Lock the prescription whatever its status (a void may reopen a dispensed one)."""
    prescription = await repository.lock_prescription(session, prescription_id)
    return await _record(session, prescription) if prescription else None


@dataclass(frozen=True)
class LedgerMove:
    """The prescription's status and every line's (dispensed, remaining) after a move."""

    status: str
    balances: dict[int, tuple[int, int]]


def _settled(balances: Mapping[int, tuple[int, int]]) -> PrescriptionStatus:
    if all(remaining == 0 for _, remaining in balances.values()):
        return PrescriptionStatus.DISPENSED
    if any(dispensed > 0 for dispensed, _ in balances.values()):
        return PrescriptionStatus.PARTIALLY_DISPENSED
    return PrescriptionStatus.ACTIVE


async def move_quantities(
    session: AsyncSession, locked: PrescriptionRecord, deltas: Mapping[int, int]
) -> LedgerMove | None:
    """Dispense (positive) or give back (negative) quantities per line, all or none.

    `locked` comes from `lock_for_dispensing` or `lock` in this transaction. The conditional
    UPDATE is the guard of last resort: None when any line lacks the quantity, and the caller
    refuses the request (its transaction rolls back, so no line moved).
    """
    moved = await repository.shift_quantities(session, locked.id, deltas)
    if len(moved) != len(deltas):
        return None
    balances = {line.line_no: (line.dispensed, line.remaining) for line in locked.lines}
    balances.update(moved)
    status = _settled(balances)
    # Stored only over a status the lines decide: a cancelled or replaced prescription keeps its own.
    await repository.set_ledger_status(session, locked.id, status)
    return LedgerMove(status=status.value, balances=balances)


# ---- the patient --------------------------------------------------------------------------------


async def open_for_patient(
    session: AsyncSession, code_text: str, date_of_birth: date, *, address: str | None
) -> PrescriptionRecord | None:
    """Return the prescription when the date of birth matches its patient's; log each try.

    The code and the date of birth together are the patient's secret: a wrong date and an
    unknown code get the same answer (None).
    """
    code = codes.canonical(code_text)
    prescription = await repository.get_prescription(session, code) if code is not None else None
    if prescription is None:
        return None
    matches = prescription.patient_date_of_birth == date_of_birth
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind=ActorKind.PATIENT,
        actor_code=ActorKind.PATIENT.value,
        action=AccessAction.PATIENT_SIGN_IN
        if matches
        else audit.refused(AccessAction.PATIENT_SIGN_IN, Refusal.DENIED),
        client_address=address,
    )
    return await _record(session, prescription) if matches else None


async def read_for_patient(
    session: AsyncSession, code: str, *, address: str | None
) -> PrescriptionRecord | None:
    """Read the patient's own prescription (after open_for_patient) and write it to the access log."""
    prescription = await repository.get_prescription(session, code)
    if prescription is None:
        return None
    await audit.record_access(
        session,
        prescription_code=prescription.code,
        actor_kind=ActorKind.PATIENT,
        actor_code=ActorKind.PATIENT.value,
        action=AccessAction.PATIENT_VIEW,
        client_address=address,
    )
    return await _record(session, prescription)


async def access_entries(session: AsyncSession, code: str) -> list[audit.AccessLogEntry]:
    """Who read or changed this prescription (the caller has already logged its own read)."""
    return await audit.entries_for(session, code)


# ---- the prescriber console: a patient's earlier prescriptions ------------------------------------


@dataclass(frozen=True)
class PatientQuery:
    """Who to look for: a citizen ID, an insurance number, or a full name with the date of birth."""

    national_id: str | None = None
    insurance_no: str | None = None
    full_name: str | None = None
    date_of_birth: date | None = None


async def patient_history(
    session: AsyncSession,
    facility: FacilityRecord,
    query: PatientQuery,
    *,
    address: str | None,
    limit: int = 50,
) -> list[PrescriptionRecord]:
    """This facility's prescriptions of one patient, newest first; each one listed is logged.

    Only the facility's own prescriptions are searched: another facility's never show, so the
    search is not a way to read the national record.
    """
    if query.national_id:
        found = await repository.prescriptions_of_patient(
            session, facility.facility_code, national_id=query.national_id, limit=limit
        )
    elif query.insurance_no:
        found = await repository.prescriptions_of_patient(
            session, facility.facility_code, insurance_no=query.insurance_no.upper(), limit=limit
        )
    elif query.full_name and query.date_of_birth:
        wanted = match_key(query.full_name)
        same_day = await repository.prescriptions_of_patient(
            session, facility.facility_code, date_of_birth=query.date_of_birth, limit=limit * 4
        )
        found = [p for p in same_day if match_key(p.patient_full_name) == wanted][:limit]
    else:
        return []
    for prescription in found:
        await audit.record_access(
            session,
            prescription_code=prescription.code,
            actor_kind=ActorKind.FACILITY,
            actor_code=facility.facility_code,
            action=AccessAction.PATIENT_SEARCH,
            client_address=address,
        )
    return [record(p, []) for p in found]
