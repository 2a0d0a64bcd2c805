"""Rules of prescriptions once stored: reading, cancelling, the access log, and the quantity
ledger that dispensing moves. No HTTP here, and nothing commits.

The patient's side lives in `patients.py`, the row-to-record mapping in `records.py`; other
contexts reach both here, through the service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import codes, qr, repository, stored_signatures
from eprescribe.prescriptions.exceptions import PrescriptionConflict, PrescriptionNotFound
from eprescribe.prescriptions.models import Prescription, PrescriptionItem
from eprescribe.prescriptions.patients import (
    ACCESS_KEY_LENGTH,
    PatientQuery,
    access_entries,
    access_key_matches,
    open_for_patient,
    patient_access_key,
    patient_history,
    patient_link,
    read_for_patient,
    shown_access_key,
)
from eprescribe.prescriptions.policy import age_in_months
from eprescribe.prescriptions.records import find, from_rows, header_record
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
from kit.time import utcnow

__all__ = [
    "ACCESS_KEY_LENGTH",
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
        header_record(tuple(h), ())
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
    return from_rows(await repository.with_lines(session, code, lock=True))


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


check_stored_signatures = stored_signatures.check_stored
CONTRACT_FORM = stored_signatures.CONTRACT.name
