"""A prescription as the gateway's other dialects read it (the national protocol, FHIR)."""

from __future__ import annotations

from collections.abc import Mapping

from eprescribe.national.stored import (
    StoredDiagnosis,
    StoredDispense,
    StoredGuardian,
    StoredItem,
    StoredPatient,
    StoredPrescription,
)
from eprescribe.prescriptions.schemas import PrescriptionRecord


def stored_from_record(
    found: PrescriptionRecord,
    *,
    status: str,
    line_ids: Mapping[int, int],
    brands: Mapping[str, str],
    dispenses: tuple[StoredDispense, ...] = (),
) -> StoredPrescription:
    """Fill the dialects' view from the record; the caller decides what a pharmacy may see of it."""
    patient = found.patient
    guardian = patient.guardian
    return StoredPrescription(
        code=found.code,
        kind=found.kind,
        status=status,
        facility_code=found.facility_code,
        facility_name=found.facility_name,
        prescriber_id=found.prescriber_id,
        prescriber_name=found.prescriber_name,
        prescriber_license_no="",
        issued_at=found.issued_at,
        valid_until=found.valid_until,
        patient=StoredPatient(
            full_name=patient.full_name,
            date_of_birth=patient.date_of_birth,
            gender=patient.gender,
            national_id=patient.national_id,
            insurance_no=patient.insurance_no,
            weight_kg=patient.weight_kg,
            phone=patient.phone,
            address=patient.address,
            guardian=StoredGuardian(
                full_name=guardian["full_name"],
                national_id=guardian.get("national_id"),
                phone=guardian.get("phone"),
            )
            if guardian
            else None,
        ),
        diagnoses=tuple(StoredDiagnosis(d["icd10"], d["text"]) for d in found.diagnoses),
        items=tuple(
            StoredItem(
                line_id=line_ids[line.line_no],
                line_no=line.line_no,
                active_ingredient=line.active_ingredient,
                strength=line.strength,
                dosage_form=line.dosage_form,
                registration_no=line.registration_no,
                quantity=line.quantity,
                unit=line.unit,
                instructions=line.instructions,
                days_supply=line.days_supply,
                dispensed=line.dispensed,
                remaining=line.remaining,
                brand_name=brands.get(line.registration_no or ""),
            )
            for line in found.lines
        ),
        notes=found.notes,
        follow_up_date=found.follow_up_date,
        replaces=found.replaces_code,
        replaced_by=found.replaced_by_code,
        sensitive=found.sensitive,
        dispenses=dispenses,
    )
