"""A stored prescription as a FHIR `collection` Bundle: one MedicationRequest per line.

`collection`, not `document`: a document is an attested snapshot that never changes, while this
export carries the live status and dispenses. What the prescriber attested is the JWS stored
beside the record, not this Bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from eprescribe.fhir import parties, systems
from eprescribe.national.kinds import KIND_NAMES
from eprescribe.national.stored import StoredItem, StoredPrescription
from kit.time import vn_time

Resource = dict[str, Any]
# Builds the dispenses' entries from (prescription, fullUrl of each line's request, patient's
# fullUrl); the gateway owns the dispenses, so it passes this when it exports them.
DispenseEntries = Callable[[StoredPrescription, dict[int, str], str], list[tuple[str, Resource]]]


def medication_concept(item: StoredItem) -> dict[str, Any]:
    """Name the medicine: the registration number when there is one, and always INN, strength, form."""
    concept: dict[str, Any] = {
        "extension": [
            {"url": systems.EXT_INGREDIENT, "valueString": item.active_ingredient},
            {"url": systems.EXT_STRENGTH, "valueString": item.strength},
            {"url": systems.EXT_FORM, "valueString": item.dosage_form},
        ],
        "text": f"{item.active_ingredient} {item.strength}, {item.dosage_form}",
    }
    if item.registration_no:
        coding = {"system": systems.REGISTRATION_NO, "code": item.registration_no}
        if item.brand_name:
            coding["display"] = item.brand_name
        concept["coding"] = [coding]
    return concept


def _status_reason(rx: StoredPrescription) -> dict[str, Any] | None:
    if rx.status not in {"cancelled", "replaced", "expired"}:
        return None
    reason: dict[str, Any] = {
        "coding": [{"system": systems.STATUS, "code": rx.status, "display": systems.STATUS_NAMES[rx.status]}]
    }
    if rx.status == "cancelled" and rx.cancel_reason:
        reason["text"] = rx.cancel_reason
    elif rx.status == "replaced" and rx.replaced_by:
        reason["text"] = f"Đã được thay thế bởi đơn {rx.replaced_by}"
    return reason


def medication_request(rx: StoredPrescription, item: StoredItem, refs: dict[str, Any]) -> Resource:
    """Build the MedicationRequest of one line; prescription-wide facts repeat on every line."""
    extension: list[dict[str, Any]] = [{"url": systems.EXT_STATUS, "valueCode": rx.status}]
    if rx.follow_up_date:
        extension.append({"url": systems.EXT_FOLLOW_UP, "valueDate": rx.follow_up_date.isoformat()})
    request: Resource = {
        "resourceType": "MedicationRequest",
        "id": systems.stable_id(rx.code, "line", str(item.line_no)),
        "extension": extension,
        "identifier": [{"system": systems.PRESCRIPTION_LINE, "value": f"{rx.code}/{item.line_no}"}],
        "status": systems.REQUEST_STATUS[rx.status],
        "intent": "order",
        "category": [
            {"coding": [{"system": systems.REQUEST_CATEGORY, "code": "outpatient"}]},
            {"coding": [{"system": systems.KIND, "code": rx.kind, "display": KIND_NAMES[rx.kind]}]},
        ],
        "medicationCodeableConcept": medication_concept(item),
        "subject": {"reference": refs["patient"]},
        "authoredOn": vn_time(rx.issued_at),
        "requester": {"reference": refs["role"]},
        "reasonReference": [{"reference": url} for url in refs["conditions"]],
        "groupIdentifier": {"system": systems.PRESCRIPTION, "value": rx.code},
        "dosageInstruction": [{"text": item.instructions}],
        "dispenseRequest": {
            "validityPeriod": {"start": vn_time(rx.issued_at), "end": vn_time(rx.valid_until)},
            "quantity": {"value": item.quantity, "unit": item.unit},
            "expectedSupplyDuration": {
                "value": item.days_supply,
                "unit": "ngày",
                "system": systems.UCUM,
                "code": "d",
            },
        },
    }
    reason = _status_reason(rx)
    if reason is not None:
        request["statusReason"] = reason
    if rx.notes:
        request["note"] = [{"text": rx.notes}]
    if rx.replaces:
        request["priorPrescription"] = {"identifier": {"system": systems.PRESCRIPTION, "value": rx.replaces}}
    return request


def prescription_bundle(
    rx: StoredPrescription,
    *,
    include_identity: bool,
    dispenses: DispenseEntries | None = None,
    exported_at: datetime | None = None,
) -> dict[str, Any]:
    """Export a prescription; identity numbers only when `include_identity` (the caller decides)."""
    entries: list[tuple[str, Resource]] = []

    def add(resource: Resource | None) -> str:
        if resource is None:
            return ""
        url = systems.urn(resource["id"])
        entries.append((url, resource))
        return url

    ids = {
        name: systems.stable_id(rx.code, name)
        for name in ("patient", "guardian", "weight", "prescriber", "role", "facility")
    }
    patient_url = systems.urn(ids["patient"])
    refs: dict[str, Any] = {
        "patient": patient_url,
        "role": systems.urn(ids["role"]),
        "conditions": [systems.urn(systems.stable_id(rx.code, "condition", d.icd10)) for d in rx.diagnoses],
    }
    request_urls = {item.line_no: add(medication_request(rx, item, refs)) for item in rx.items}
    add(parties.patient(rx, ids["patient"], include_identity=include_identity))
    add(parties.guardian(rx, ids["guardian"], patient_url, include_identity=include_identity))
    add(parties.body_weight(rx, ids["weight"], patient_url))
    prescriber_ids = [parties.identifier(systems.PRESCRIBER, rx.prescriber_id)]
    if rx.prescriber_license_no:
        prescriber_ids.append(parties.identifier(systems.CCHN, rx.prescriber_license_no))
    prescriber_url = add(parties.practitioner(ids["prescriber"], rx.prescriber_name, prescriber_ids))
    facility_url = systems.urn(ids["facility"])
    add(parties.role(ids["role"], prescriber_url, facility_url))
    add(parties.organization(ids["facility"], rx.facility_name, systems.FACILITY, rx.facility_code))
    for diagnosis in rx.diagnoses:
        add(
            parties.condition(
                diagnosis, systems.stable_id(rx.code, "condition", diagnosis.icd10), patient_url
            )
        )
    if dispenses is not None:
        entries.extend(dispenses(rx, request_urls, patient_url))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": systems.stable_id(rx.code, "bundle"),
        "identifier": {"system": systems.PRESCRIPTION, "value": rx.code},
        "type": "collection",
    }
    if rx.sensitive:
        # HIV/AIDS data: the v3 sensitivity label tells every receiver to restrict it.
        bundle["meta"] = {"security": [{"system": systems.ACT_CODE, "code": "HIV"}]}
    if exported_at is not None:
        bundle["timestamp"] = vn_time(exported_at)
    bundle["entry"] = [{"fullUrl": url, "resource": resource} for url, resource in entries]
    return bundle
