"""Submitting a signed prescription: verify, authorise, check, number, store; all or nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import checks, codes, qr, repository, signature
from eprescribe.prescriptions.exceptions import PrescriptionConflict
from eprescribe.prescriptions.models import Prescription
from eprescribe.prescriptions.policy import collection_deadline, is_hiv
from eprescribe.prescriptions.schemas import (
    PrescribedItem,
    PrescriptionPayload,
    PrescriptionStatus,
)
from eprescribe.registry import service as registry
from eprescribe.registry.exceptions import PrescriberNotAllowed
from eprescribe.registry.schemas import ClientStatus, FacilityRecord
from kit import audit, idempotency, metrics
from kit.errors import Forbidden, InvalidContent, field_error, pydantic_errors
from kit.runtime import Runtime
from kit.settings import Settings
from kit.text import match_key
from kit.time import utcnow, vn_time

# Turns a verified JWS payload written in another form (a FHIR Bundle) into the contract's payload.
Translate = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def submit(
    session: AsyncSession,
    runtime: Runtime,
    *,
    facility: FacilityRecord,
    compact_jws: str,
    idempotency_key: str | None,
    base_url: str,
    translate: Translate | None = None,
) -> idempotency.Answer:
    """Verify, check and store a signed prescription; a retry with the same key gets the first answer.

    With `translate`, the signed payload is another form of the prescription (a FHIR Bundle):
    the signature is verified over it as sent, then the translation goes through every rule.
    """
    compact = compact_jws.strip()

    async def work() -> idempotency.Answer:
        return await _store(session, runtime, facility, compact, base_url, translate)

    return await idempotency.run_once(
        session,
        scope=f"facility:{facility.facility_code}:prescriptions",
        key=idempotency_key,
        fingerprint={"jws": compact},
        work=work,
    )


async def submit_mapped(
    session: AsyncSession,
    runtime: Runtime,
    *,
    facility: FacilityRecord,
    prescriber_id: str,
    payload: dict[str, Any],
    compact_jws: str | None,
    idempotency_key: str | None,
    base_url: str,
) -> idempotency.Answer:
    """Store a prescription mapped from the national protocol's body, through every rule here.

    The caller has verified that `compact_jws` is `prescriber_id`'s signature over the body this
    payload was mapped from (the dialect signs its own body, not the contract's payload); None
    only when legacy unsigned submissions are admitted, and the record is then marked unsigned.
    The same signed body (or, unsigned, the same payload) is accepted once.
    """
    compact = compact_jws.strip() if compact_jws else None
    digest = (
        signature.payload_digest(compact)
        if compact
        else hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    )

    async def work() -> idempotency.Answer:
        found = await registry.signer(session, prescriber_id, facility.facility_code)
        if found is None:
            raise PrescriberNotAllowed(f"No registered prescriber {prescriber_id}")
        # Validated as strictly as a signed payload: the mapping's JSON text.
        raw = json.dumps(payload, ensure_ascii=False).encode()
        signed = signature.SignedPayload(found[0], payload, raw, digest, found[1])
        return await _store_signed(
            session, runtime, facility, signed, compact or "", base_url, unsigned=compact is None
        )

    return await idempotency.run_once(
        session,
        scope=f"facility:{facility.facility_code}:prescriptions",
        key=idempotency_key,
        fingerprint={"jws": compact} if compact else {"payload": payload},
        work=work,
    )


async def _store(
    session: AsyncSession,
    runtime: Runtime,
    facility: FacilityRecord,
    compact: str,
    base_url: str,
    translate: Translate | None = None,
) -> idempotency.Answer:
    signed = await signature.verify(session, compact, facility.facility_code)
    if translate is not None:
        translated = await translate(signed.payload)
        signed = replace(signed, payload=translated, raw=json.dumps(translated, ensure_ascii=False).encode())
    return await _store_signed(session, runtime, facility, signed, compact, base_url)


async def _store_signed(
    session: AsyncSession,
    runtime: Runtime,
    facility: FacilityRecord,
    signed: signature.SignedPayload,
    compact: str,
    base_url: str,
    *,
    unsigned: bool = False,
) -> idempotency.Answer:
    now = utcnow()
    payload = parse_payload(signed.raw)
    _authorise(facility, signed, payload)
    _check_issued_at(payload, now, runtime.settings)
    await checks.check_policy(session, payload, signed.prescriber)
    replaced = (
        await _replaceable(session, payload.replaces, facility.facility_code) if payload.replaces else None
    )
    lines = [_line(index, item) for index, item in enumerate(payload.items)]
    digest_of_lines = qr.lines_digest(
        [
            Drawn(n, i.active_ingredient, i.strength, i.dosage_form, i.quantity, i.unit)
            for n, i in enumerate(payload.items, 1)
        ]
    )
    code, valid_until = await _insert(
        session, runtime, payload, signed, facility, compact, digest_of_lines, lines, now, unsigned
    )
    if replaced is not None:
        await _mark_replaced(session, replaced, code)
    await audit.record_access(
        session,
        prescription_code=code,
        actor_kind=audit.ActorKind.FACILITY,
        actor_code=facility.facility_code,
        action=audit.AccessAction.CREATE,
    )
    metrics.PRESCRIPTIONS_SUBMITTED.labels(payload.kind).inc()
    return idempotency.Answer(201, created_body(code, valid_until, base_url))


def parse_payload(raw: bytes) -> PrescriptionPayload:
    """Validate the signed JSON strictly: no coercion (`"2"` or `true` is no quantity), offsets required."""
    try:
        return PrescriptionPayload.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise InvalidContent.from_errors(pydantic_errors(exc, ["payload"])) from exc


def _authorise(
    facility: FacilityRecord, signed: signature.SignedPayload, payload: PrescriptionPayload
) -> None:
    """The token's facility is the one named, and the signer is an active prescriber there."""
    prescriber = signed.prescriber
    if payload.facility_code != facility.facility_code:
        raise Forbidden(
            f"This token belongs to facility {facility.facility_code}, the prescription names {payload.facility_code}",
            errors=[
                field_error(
                    ["payload", "facility_code"], "not the facility of the token", "not_token_facility"
                )
            ],
        )
    if prescriber.status != ClientStatus.ACTIVE:
        raise PrescriberNotAllowed(f"Prescriber {prescriber.prescriber_id} is {prescriber.status}")
    if not signed.works_here:
        raise PrescriberNotAllowed(
            f"Prescriber {prescriber.prescriber_id} is not registered at facility {facility.facility_code}",
            errors=[
                field_error(
                    ["body", "jws", "header", "kid"], "not registered at this facility", "not_at_facility"
                )
            ],
        )


def _check_issued_at(payload: PrescriptionPayload, now: datetime, settings: Settings) -> None:
    issued = payload.issued_at
    if issued > now + timedelta(seconds=settings.clock_skew_seconds):
        raise InvalidContent.field(["payload", "issued_at"], "is in the future", "issued_in_future")
    if issued < now - timedelta(seconds=settings.issued_at_max_age_seconds):
        raise InvalidContent.field(
            ["payload", "issued_at"],
            f"is older than {settings.issued_at_max_age_seconds // 3600} hours; sign a fresh prescription",
            "issued_too_long_ago",
            hours=settings.issued_at_max_age_seconds // 3600,
        )


def _client_code(payload: PrescriptionPayload, facility_code: str) -> str | None:
    """The client's own code, checked against its facility and kind; None to draw one."""
    if payload.code is None:
        return None
    code = codes.canonical(payload.code)
    if code is None:
        raise InvalidContent.field(
            ["payload", "code"],
            "must be 5 facility characters, 7 of [0-9A-Z], '-' and the kind",
            "code_format",
        )
    if codes.facility_of(code) != facility_code:
        raise InvalidContent.field(["payload", "code"], "must start with the facility code", "code_facility")
    if codes.kind_of(code) != payload.kind:
        raise InvalidContent.field(["payload", "code"], "must end with the prescription's kind", "code_kind")
    return code


async def _replaceable(session: AsyncSession, replaces: str, facility_code: str) -> Prescription:
    """The prescription this one corrects: of this facility, with nothing dispensed yet."""
    code = codes.canonical(replaces)
    if code is None:
        raise InvalidContent.field(["payload", "replaces"], "not a prescription code", "code_format")
    old = await repository.get_prescription(session, code)
    if old is None or old.facility_code != facility_code:
        raise InvalidContent.field(
            ["payload", "replaces"], "no prescription of this facility has this code", "replaces_unknown"
        )
    if old.status != PrescriptionStatus.ACTIVE:
        raise PrescriptionConflict(
            f"{code} is {old.status}; only a prescription with nothing dispensed can be replaced",
            errors=[field_error(["payload", "replaces"], "not replaceable", "not_replaceable")],
        )
    return old


@dataclass(frozen=True)
class Drawn:
    """A prescribed line as the QR's digest sees it."""

    line_no: int
    active_ingredient: str
    strength: str
    dosage_form: str
    quantity: int
    unit: str


def _prescription(
    payload: PrescriptionPayload,
    signed: signature.SignedPayload,
    facility: FacilityRecord,
    compact: str,
    code: str,
    now: datetime,
) -> dict[str, Any]:
    patient = payload.patient
    return {
        "code": code,
        "kind": payload.kind.value,
        "status": PrescriptionStatus.ACTIVE.value,
        "facility_code": payload.facility_code,
        "prescriber_id": signed.prescriber.prescriber_id,
        "prescriber_name": signed.prescriber.full_name,
        "facility_name": facility.name,
        "issued_at": payload.issued_at,
        "valid_until": collection_deadline(payload.issued_at),
        "replaces_code": codes.canonical(payload.replaces) if payload.replaces else None,
        "patient_full_name": patient.full_name,
        "patient_date_of_birth": patient.date_of_birth,
        "patient_gender": patient.gender.value,
        "patient_national_id": patient.national_id,
        "patient_insurance_no": patient.insurance_no,
        "patient_weight_kg": patient.weight_kg,
        "patient_phone": patient.phone,
        "patient_address": patient.address,
        "guardian": patient.guardian.model_dump(exclude_none=True) if patient.guardian else None,
        "diagnoses": [d.model_dump() for d in payload.diagnoses],
        "notes": payload.notes,
        "follow_up_date": payload.follow_up_date,
        "sensitive": any(is_hiv(d.icd10) for d in payload.diagnoses),
        "jws": compact,
        "payload_digest": signed.digest,
        "created_at": now,
    }


def _line(index: int, item: PrescribedItem) -> dict[str, Any]:
    return {
        "line_no": index + 1,
        "active_ingredient": item.active_ingredient,
        "strength": item.strength,
        "dosage_form": item.dosage_form,
        "registration_no": item.registration_no,
        "quantity": item.quantity,
        "unit": item.unit,
        "instructions": item.instructions,
        "days_supply": item.days_supply,
        "dispensed": 0,
        "remaining": item.quantity,
        "ingredient_key": match_key(item.active_ingredient),
        "strength_key": match_key(item.strength),
        "form_key": match_key(item.dosage_form),
    }


REPLAY = "This signed prescription was already submitted (replay refused)"
# A drawn code is taken by another prescription once in 7.8e10 draws; a few tries always do.
CODE_DRAWS = 5


async def _insert(
    session: AsyncSession,
    runtime: Runtime,
    payload: PrescriptionPayload,
    signed: signature.SignedPayload,
    facility: FacilityRecord,
    compact: str,
    digest_of_lines: str,
    lines: list[dict[str, Any]],
    now: datetime,
    unsigned: bool = False,
) -> tuple[str, datetime]:
    """Store the prescription and its lines under a free code; return the code and valid_until.

    The unique indexes decide, not a read beforehand: the same signed payload twice is a replay
    (409), a client's code in use is 409, and a drawn code that is taken is drawn again.
    """
    chosen = _client_code(payload, payload.facility_code)
    indexes = repository.identity_indexes(
        session, national_id=payload.patient.national_id, insurance_no=payload.patient.insurance_no
    )
    for _ in range(1 if chosen else CODE_DRAWS):
        code = chosen or codes.generate(payload.facility_code, payload.kind)
        row = _prescription(payload, signed, facility, compact, code, now) | indexes
        claims = qr.claims(code, row["kind"], row["facility_code"], row["valid_until"], digest_of_lines)
        row |= {"lines_digest": digest_of_lines, "qr_text": qr.text(runtime.keyring, code, claims)}
        if unsigned:
            row["unsigned"] = True
        try:
            stored = await repository.add_prescription(
                session, row, [line | {"prescription_code": code} for line in lines]
            )
        except repository.PayloadReplayed:
            raise PrescriptionConflict(REPLAY) from None
        if stored is not None:
            return code, row["valid_until"]
        if await repository.payload_seen(session, signed.digest):
            raise PrescriptionConflict(REPLAY)
        if chosen:
            raise PrescriptionConflict(
                f"Code {code} is already in use",
                errors=[field_error(["payload", "code"], "already in use", "code_in_use")],
            )
    raise PrescriptionConflict("Could not draw a free code; retry")  # pragma: no cover


async def _mark_replaced(session: AsyncSession, replaced: Prescription, code: str) -> None:
    assert replaced.id is not None
    if not await repository.mark_replaced(
        session, prescription_id=replaced.id, code=replaced.code, replaced_by=code
    ):
        raise PrescriptionConflict(
            f"{replaced.code} can no longer be replaced: something was dispensed or it was cancelled",
            errors=[field_error(["payload", "replaces"], "not replaceable", "not_replaceable")],
        )


def created_body(code: str, valid_until: datetime, base_url: str) -> dict[str, Any]:
    return {
        "code": code,
        "status": PrescriptionStatus.ACTIVE.value,
        "valid_until": vn_time(valid_until),
        "qr_png": f"{base_url}api/v1/prescriptions/{code}/qr.png",
        "qr_svg": f"{base_url}api/v1/prescriptions/{code}/qr.svg",
    }
