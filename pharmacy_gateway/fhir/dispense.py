"""Each line of each dispense as a MedicationDispense, with its pharmacist and pharmacy."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from eprescribe.fhir import parties, systems
from eprescribe.national.stored import StoredDispense, StoredDispenseLine, StoredPrescription
from kit.time import vn_time

Resource = dict[str, Any]


def _medication(line: StoredDispenseLine) -> dict[str, Any]:
    """Name the product handed over; a batch needs a contained Medication to carry it."""
    coding = {"coding": [{"system": systems.REGISTRATION_NO, "code": line.registration_no}]}
    if line.batch_no is None and line.expiry_date is None:
        return {"medicationCodeableConcept": coding}
    batch: dict[str, Any] = {}
    if line.batch_no:
        batch["lotNumber"] = line.batch_no
    if line.expiry_date:
        batch["expirationDate"] = line.expiry_date.isoformat()
    return {
        "contained": [{"resourceType": "Medication", "id": "product", "code": coding, "batch": batch}],
        "medicationReference": {"reference": "#product"},
    }


def medication_dispense(
    rx: StoredPrescription, dispense: StoredDispense, line: StoredDispenseLine, refs: dict[str, str]
) -> Resource:
    """Build one MedicationDispense; a voided dispense stays, marked entered-in-error."""
    unit = next((item.unit for item in rx.items if item.line_no == line.line_no), "")
    found: Resource = {
        "resourceType": "MedicationDispense",
        "id": systems.stable_id(rx.code, "dispense", dispense.dispense_id, str(line.position)),
        "identifier": [{"system": systems.DISPENSE, "value": f"{dispense.dispense_id}/{line.position}"}],
        "status": "entered-in-error" if dispense.voided_at else "completed",
        **_medication(line),
        "subject": {"reference": refs["patient"]},
        "performer": [
            {"actor": {"reference": refs["pharmacist"]}},
            {"actor": {"reference": refs["pharmacy"]}},
        ],
        "authorizingPrescription": [{"reference": refs["request"]}],
        "quantity": {"value": line.quantity, "unit": unit},
        "whenHandedOver": vn_time(dispense.created_at),
    }
    if dispense.voided_at and dispense.void_reason:
        found["statusReasonCodeableConcept"] = {"text": dispense.void_reason}
    if line.unit_price is not None:
        found["extension"] = [
            {"url": systems.EXT_UNIT_PRICE, "valueMoney": {"value": line.unit_price, "currency": "VND"}}
        ]
    return found


def dispense_entries(
    rx: StoredPrescription, request_urls: dict[int, str], patient_url: str
) -> list[tuple[str, Resource]]:
    """List the dispenses' entries; each pharmacist and pharmacy appears once."""
    entries: list[tuple[str, Resource]] = []
    seen: set[str] = set()

    def once(resource: Resource) -> str:
        url = systems.urn(resource["id"])
        if url not in seen:
            seen.add(url)
            entries.append((url, resource))
        return url

    for dispense in rx.dispenses:
        pharmacist = parties.practitioner(
            systems.stable_id("pharmacist", dispense.pharmacist_license_no),
            dispense.pharmacist_name,
            [parties.identifier(systems.CCHN, dispense.pharmacist_license_no)],
        )
        pharmacy = parties.organization(
            systems.stable_id("pharmacy", dispense.pharmacy_code),
            dispense.pharmacy_name,
            systems.PHARMACY,
            dispense.pharmacy_code,
        )
        refs = {"patient": patient_url, "pharmacist": once(pharmacist), "pharmacy": once(pharmacy)}
        for line in dispense.lines:
            resource = medication_dispense(
                rx, dispense, line, {**refs, "request": request_urls[line.line_no]}
            )
            entries.append((systems.urn(resource["id"]), resource))
    return entries


def _initials(full_name: str) -> str:
    return " ".join(f"{word[0].upper()}." for word in full_name.split() if word)


def dispense_bundle(
    rx: StoredPrescription, dispense: StoredDispense, *, exported_at: datetime
) -> dict[str, Any]:
    """One dispense, for the pharmacy that made it, as a `collection` Bundle.

    A MedicationDispense per line (a voided dispense stays, `entered-in-error`), the pharmacist
    and the pharmacy, and the Patient as a pharmacy may see them: no identity numbers, the birth
    year only, initials only for HIV/AIDS patients. Each line points at the prescribed line by
    identifier (`CODE/line_no`), the MedicationRequest the issuing facility's export holds.
    """
    person = rx.patient
    patient: Resource = {
        "resourceType": "Patient",
        "id": systems.stable_id(rx.code, "patient"),
        "name": [parties.human_name(_initials(person.full_name) if rx.sensitive else person.full_name)],
        "gender": person.gender,
        "birthDate": str(person.date_of_birth.year),
    }
    patient_url = systems.urn(patient["id"])
    placeholders = {item.line_no: f"urn:line:{item.line_no}" for item in rx.items}
    entries: list[tuple[str, Resource]] = [(patient_url, patient)]
    for url, resource in dispense_entries(replace(rx, dispenses=(dispense,)), placeholders, patient_url):
        if resource["resourceType"] == "MedicationDispense":
            line_no = next(
                n
                for n, ref in placeholders.items()
                if ref == resource["authorizingPrescription"][0]["reference"]
            )
            resource["authorizingPrescription"] = [
                {"identifier": {"system": systems.PRESCRIPTION_LINE, "value": f"{rx.code}/{line_no}"}}
            ]
        entries.append((url, resource))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": systems.stable_id(rx.code, "dispense-bundle", dispense.dispense_id),
        "identifier": {"system": systems.DISPENSE, "value": dispense.dispense_id},
        "type": "collection",
        "timestamp": vn_time(exported_at),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }
    if rx.sensitive:
        bundle["meta"] = {"security": [{"system": systems.ACT_CODE, "code": "HIV"}]}
    return bundle
