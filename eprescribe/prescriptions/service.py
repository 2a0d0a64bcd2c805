"""Rules of prescriptions once stored: reading, cancelling, the access log, and the quantity
ledger that dispensing moves. No HTTP here, and nothing commits."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import codes, qr, repository, stored_signatures
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
from eprescribe.prescriptions.stored_signatures import StoredCheck
from eprescribe.prescriptions.submission import Translate, submit, submit_mapped
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import FacilityRecord, PrescriberRecord
from kit import audit
from kit.audit import AccessAction, ActorKind, Refusal
from kit.security import KeyRing
from kit.text import match_key
from kit.time import utcnow

if TYPE_CHECKING:
    from kit.database import AnyRow

__all__ = [
    "CONTRACT_FORM",
    "FacilityRead",
    "LedgerMove",
    "PatientQuery",
    "StoredCheck",
    "Translate",
    "access_entries",
    "access_key_matches",
    "access_log",
    "age_in_months",
    "cancel",
    "canonical_code",
    "check_stored_signatures",
    "code_from_scanned",
    "dispensable",
    "find",
    "line_ids",
    "load_reference_data",
    "lock",
    "move_quantities",
    "open_for_patient",
    "patient_access_key",
    "patient_history",
    "patient_link",
    "policy_for_forms",
    "qr_matches",
    "qr_svg",
    "read_for_facility",
    "read_for_patient",
    "recent_for_prescriber",
    "search_diagnoses",
    "shown_access_key",
    "status_at",
    "submit",
    "submit_mapped",
]


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


def _from_rows(rows: list[AnyRow]) -> PrescriptionRecord | None:
    """A record from the joined header-and-lines rows of `repository.with_lines`."""
    if not rows:
        return None
    return _header(tuple(rows[0]), tuple(_line_of(tuple(r[HEADER_WIDTH:])) for r in rows))


def _header(h: tuple[Any, ...], lines: tuple[Line, ...]) -> PrescriptionRecord:
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
        items=await repository.items_of(session, prescription.id, code=prescription.code),
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
        session, prescription_id=prescription.id, code=prescription.code, reason=reason, at=utcnow()
    ):
        prescription = await repository.reload(session, prescription)
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
    prescription = await repository.reload(session, prescription)
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
    session: AsyncSession,
    facility: FacilityRecord,
    prescriber_id: str,
    limit: int = 20,
    *,
    address: str | None = None,
) -> list[PrescriptionRecord]:
    """A prescriber's latest prescriptions at this facility, newest first (lines not loaded).

    The list shows each patient's name, so each shown prescription gets an access-log entry.
    """
    found = [
        _header(tuple(h), ())
        for h in await repository.recent_headers(session, prescriber_id, facility.facility_code, limit)
    ]
    now = utcnow()
    for record in found:
        await audit.record_access(
            session,
            prescription_code=record.code,
            actor_kind=ActorKind.FACILITY,
            actor_code=facility.facility_code,
            action=AccessAction.CONSOLE_LIST,
            client_address=address,
            at=now,
        )
    return found


# ---- pharmacies: finding, checking the QR, and the quantity ledger ------------------------------


async def find(session: AsyncSession, code: str) -> PrescriptionRecord | None:
    """The prescription with this canonical code, whoever asks (the caller decides who may see it)."""
    return _from_rows(await repository.with_lines(session, code))


async def line_ids(session: AsyncSession, found: PrescriptionRecord) -> dict[int, int]:
    """Each line's nationally unique id by its line_no (the national protocol names lines by id)."""
    return {
        item.line_no: item.id
        for item in await repository.items_of(session, found.id, code=found.code)
        if item.id
    }


def qr_matches(keyring: KeyRing, scanned: str, found: PrescriptionRecord) -> bool:
    """Whether a scanned QR carries the national signature over this prescription as recorded."""
    expected = qr.claims(
        found.code, found.kind, found.facility_code, found.valid_until, qr.lines_digest(found.lines)
    )
    return qr.matches(keyring, scanned, expected)


async def lock(session: AsyncSession, code: str) -> PrescriptionRecord | None:
    """Find and lock a prescription for this transaction, whatever its status (one round trip).

    Dispenses, voids, a cancellation or a replacement of the same prescription queue on this
    lock, and the lines returned are the ones the ledger then moves. The caller checks whether
    the status still allows what it is about to do (`dispensable`).
    """
    return _from_rows(await repository.with_lines(session, code, lock=True))


def dispensable(found: PrescriptionRecord, now: datetime) -> bool:
    """Whether a pharmacy may still hand something over against this prescription now."""
    return found.status in DISPENSABLE and now <= found.valid_until


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

    `locked` comes from `lock` in this transaction. The conditional UPDATE is the guard of last
    resort: None when any line lacks the quantity, and the caller refuses the request (its
    transaction rolls back, so no line moved).
    """
    balances = {line.line_no: (line.dispensed, line.remaining) for line in locked.lines}
    expected = dict(balances)
    for line_no, delta in deltas.items():
        dispensed, remaining = expected[line_no]
        expected[line_no] = (dispensed + delta, remaining - delta)
    status = _settled(expected)
    moved = await repository.move_quantities(session, locked.id, locked.code, deltas, status)
    if len(moved) != len(deltas):
        return None
    balances.update(moved)
    return LedgerMove(status=status.value, balances=balances)


# ---- the patient --------------------------------------------------------------------------------


check_stored_signatures = stored_signatures.check_stored
CONTRACT_FORM = stored_signatures.CONTRACT.name

# The patient's access key: 12 characters of base32 (60 bits), printed only on the patient's
# paper and in its link; a pharmacy's lookup never shows it.
ACCESS_KEY_LENGTH = 12
_ACCESS_KEY_PURPOSE = "patient-access"


def patient_access_key(keyring: KeyRing, code: str) -> str:
    """The access key of a prescription's patient page (derived, so the paper can be reprinted)."""
    digest = keyring.derive(_ACCESS_KEY_PURPOSE, code)
    return base64.b32encode(digest).decode()[:ACCESS_KEY_LENGTH]


def shown_access_key(key: str) -> str:
    """`ABCDEFGHJKLM` -> `ABCD-EFGH-JKLM`, easier to read off the paper."""
    return "-".join(key[i : i + 4] for i in range(0, len(key), 4))


def access_key_matches(keyring: KeyRing, code: str, typed: str) -> bool:
    """Whether a typed or linked key is this prescription's (spaces, dashes and case ignored)."""
    cleaned = "".join(ch for ch in typed.upper() if ch.isalnum())
    return hmac.compare_digest(cleaned.encode(), patient_access_key(keyring, code).encode())


def patient_link(base_url: str, keyring: KeyRing, code: str) -> str:
    """The patient's own page of a prescription, key included (the QR on the patient's paper)."""
    return f"{base_url.rstrip('/')}/rx/{code}?k={patient_access_key(keyring, code)}"


async def open_for_patient(
    session: AsyncSession, code_text: str, date_of_birth: date, *, address: str | None
) -> PrescriptionRecord | None:
    """Return the prescription when the date of birth matches its patient's; log each try.

    The code and the date of birth together are the patient's secret: a wrong date and an
    unknown code get the same answer (None).
    """
    code = codes.canonical(code_text)
    found = await find(session, code) if code is not None else None
    if found is None:
        return None
    matches = found.patient.date_of_birth == date_of_birth
    await audit.record_access(
        session,
        prescription_code=found.code,
        actor_kind=ActorKind.PATIENT,
        actor_code=ActorKind.PATIENT.value,
        action=AccessAction.PATIENT_SIGN_IN
        if matches
        else audit.refused(AccessAction.PATIENT_SIGN_IN, Refusal.DENIED),
        client_address=address,
    )
    return found if matches else None


async def read_for_patient(
    session: AsyncSession, code: str, *, address: str | None
) -> PrescriptionRecord | None:
    """Read the patient's own prescription (after open_for_patient) and write it to the access log."""
    found = await find(session, code)
    if found is None:
        return None
    await audit.record_access(
        session,
        prescription_code=found.code,
        actor_kind=ActorKind.PATIENT,
        actor_code=ActorKind.PATIENT.value,
        action=AccessAction.PATIENT_VIEW,
        client_address=address,
    )
    return found


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
    return [_header(tuple(p), ()) for p in found]
