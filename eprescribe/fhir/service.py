"""Prescriptions in HL7 FHIR R4: the issuing facility's export, and submission of a signed Bundle.

Both go through the prescriptions service: the export is the facility's read (same
authorization, in the access log), the submission is the same signed submission with the
Bundle translated to the contract's payload after its signature is verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.fhir import systems
from eprescribe.fhir.export import prescription_bundle
from eprescribe.fhir.importer import is_bundle, payload_from_bundle, signed_facts
from eprescribe.fhir.validate import operation_outcome
from eprescribe.national.catalogue import CatalogueEntry
from eprescribe.national.problems import MappingError
from eprescribe.national.stored import (
    StoredDiagnosis,
    StoredGuardian,
    StoredItem,
    StoredPatient,
    StoredPrescription,
)
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.schemas import SignedForm
from eprescribe.registry.schemas import FacilityRecord
from kit import idempotency
from kit.audit import AccessAction
from kit.errors import InvalidContent, field_error
from kit.runtime import Runtime
from kit.time import utcnow

# A stored JWS of a FHIR submission is verified again over the Bundle, read by the importer.
SIGNED_FORM = SignedForm("FHIR", recognises=is_bundle, facts=signed_facts)


def _stored(record: prescriptions.FacilityRead, brands: Mapping[str, str]) -> StoredPrescription:
    p = record.prescription
    guardian = p.guardian
    return StoredPrescription(
        code=p.code,
        kind=p.kind,
        status=record.status,
        facility_code=p.facility_code,
        facility_name=p.facility_name,
        prescriber_id=p.prescriber_id,
        prescriber_name=p.prescriber_name,
        prescriber_license_no=record.prescriber.license_no,
        issued_at=p.issued_at,
        valid_until=p.valid_until,
        patient=StoredPatient(
            full_name=p.patient_full_name,
            date_of_birth=p.patient_date_of_birth,
            gender=p.patient_gender,
            national_id=p.patient_national_id,
            insurance_no=p.patient_insurance_no,
            weight_kg=p.patient_weight_kg,
            phone=p.patient_phone,
            address=p.patient_address,
            guardian=StoredGuardian(guardian["full_name"], guardian.get("national_id"), guardian.get("phone"))
            if guardian
            else None,
        ),
        diagnoses=tuple(StoredDiagnosis(d["icd10"], d["text"]) for d in p.diagnoses),
        items=tuple(
            StoredItem(
                line_id=item.id or 0,
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
                brand_name=brands.get(item.registration_no or ""),
            )
            for item in record.items
        ),
        notes=p.notes,
        follow_up_date=p.follow_up_date,
        replaces=p.replaces_code,
        replaced_by=p.replaced_by_code,
        cancel_reason=p.cancel_reason,
        sensitive=p.sensitive,
    )


async def export(
    session: AsyncSession, facility: FacilityRecord, code: str, *, address: str | None
) -> dict[str, Any]:
    """The prescription as a FHIR `collection` Bundle, for the facility that issued it."""
    record = await prescriptions.read_for_facility(
        session, facility, code, action=AccessAction.READ_FHIR, address=address
    )
    numbers = [item.registration_no for item in record.items if item.registration_no]
    products = await catalogue.products_by_registration(session, numbers)
    stored = _stored(record, {number: product.name for number, product in products.items()})
    return prescription_bundle(stored, include_identity=True, exported_at=utcnow())


def _registration_numbers(bundle: Any) -> list[str]:
    found: list[str] = []
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        concept = resource.get("medicationCodeableConcept") if isinstance(resource, Mapping) else None
        codings = concept.get("coding") if isinstance(concept, Mapping) else None
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, Mapping) and coding.get("system") == systems.REGISTRATION_NO:
                found.append(str(coding.get("code") or ""))
    return found


async def submit(
    session: AsyncSession,
    runtime: Runtime,
    *,
    facility: FacilityRecord,
    compact_jws: str,
    idempotency_key: str | None,
    base_url: str,
) -> idempotency.Answer:
    """Store a prescription whose JWS payload is a FHIR MedicationRequest Bundle, by the same rules."""

    async def translate(bundle: dict[str, Any]) -> dict[str, Any]:
        products = await catalogue.products_by_registration(session, _registration_numbers(bundle))
        entries = {
            n: CatalogueEntry(p.registration_no, p.active_ingredient, p.strength, p.dosage_form, p.unit)
            for n, p in products.items()
        }
        try:
            return payload_from_bundle(bundle, resolve=entries.get)
        except MappingError as exc:
            errors = [field_error(["payload", *problem.loc], problem.message) for problem in exc.problems]
            raise InvalidContent(
                f"The Bundle cannot be read as a prescription: {exc.problems[0].field}: {exc.problems[0].message}",
                errors=errors,
                extra={"operation_outcome": operation_outcome(exc.problems)},
            ) from exc

    return await prescriptions.submit(
        session,
        runtime,
        facility=facility,
        compact_jws=compact_jws,
        idempotency_key=idempotency_key,
        base_url=base_url,
        translate=translate,
    )
