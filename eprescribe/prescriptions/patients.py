"""The patient's side of a prescription: the access key on the paper, opening it with the date of
birth, reading it, and the prescriber console's search of one patient's earlier prescriptions.
Every read is written to the access log."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import codes, repository
from eprescribe.prescriptions.records import find, header_record
from eprescribe.prescriptions.schemas import PrescriptionRecord
from eprescribe.registry.schemas import FacilityRecord
from kit import audit
from kit.audit import AccessAction, ActorKind, Refusal
from kit.security import KeyRing
from kit.text import match_key

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
    return [header_record(tuple(p), ()) for p in found]
