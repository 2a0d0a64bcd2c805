"""Every kind and status exported as a FHIR R4B Bundle that fhir.resources validates."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from eprescribe.fhir import systems
from eprescribe.fhir.export import prescription_bundle
from eprescribe.fhir.validate import validate_bundle
from eprescribe.national.kinds import KIND_NAMES
from tests.eprescribe.fhir.helpers import (
    DISPENSE_STATUSES,
    KINDS,
    REQUEST_STATUSES,
    STATUSES,
    export,
    full_payload,
    payload_of_kind,
    references,
    resources,
    stored_with,
)
from tests.eprescribe.national.data import a_dispense, stored_from_payload


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", STATUSES)
def test_every_kind_and_status_validates(kind: str, status: str) -> None:
    rx = stored_with(payload_of_kind(kind), status)
    bundle = export(rx)
    assert bundle["type"] == "collection"
    assert bundle["identifier"] == {"system": systems.PRESCRIPTION, "value": rx.code}
    (request,) = resources(bundle, "MedicationRequest")
    assert request["status"] == systems.REQUEST_STATUS[status]
    assert request["status"] in REQUEST_STATUSES
    assert request["intent"] == "order"
    assert {"url": systems.EXT_STATUS, "valueCode": status} in request["extension"]
    kinds = [c for category in request["category"] for c in category["coding"] if c["system"] == systems.KIND]
    assert kinds == [{"system": systems.KIND, "code": kind, "display": KIND_NAMES[kind]}]
    assert request["groupIdentifier"] == {"system": systems.PRESCRIPTION, "value": rx.code}
    if status in {"cancelled", "replaced", "expired"}:
        assert request["statusReason"]["coding"][0]["code"] == status
    else:
        assert "statusReason" not in request


def test_every_reference_resolves_inside_the_bundle() -> None:
    bundle = export(stored_with(full_payload(), "partially_dispensed"))
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(urls) == len(set(urls))
    for reference in references(bundle):
        assert reference in urls or reference == "#product"


def test_a_line_carries_medicine_quantity_supply_and_validity() -> None:
    rx = stored_with(full_payload(), "active")
    first = resources(export(rx), "MedicationRequest")[0]
    concept = first["medicationCodeableConcept"]
    assert concept["coding"] == [{"system": systems.REGISTRATION_NO, "code": "VD-15841-13"}]
    assert concept["text"] == "paracetamol 500mg, viên nén"
    assert first["dosageInstruction"] == [
        {"text": "Uống 1 viên khi sốt trên 38,5 độ, cách nhau ít nhất 4 giờ"}
    ]
    assert first["dispenseRequest"] == {
        "validityPeriod": {"start": "2026-11-22T09:30:00+07:00", "end": "2026-11-26T23:59:59+07:00"},
        "quantity": {"value": 20, "unit": "viên"},
        "expectedSupplyDuration": {"value": 7, "unit": "ngày", "system": systems.UCUM, "code": "d"},
    }
    assert first["priorPrescription"] == {
        "identifier": {"system": systems.PRESCRIPTION, "value": "25366ABCDEF1-c"}
    }
    assert first["authoredOn"] == "2026-11-22T09:30:00+07:00"


def test_the_parties_and_diagnoses() -> None:
    bundle = export(stored_with(full_payload(), "active"))
    (patient,) = resources(bundle, "Patient")
    assert patient["name"] == [
        {
            "use": "official",
            "text": "Nguyễn Thị Thu Hương",
            "family": "Nguyễn",
            "given": ["Thị", "Thu", "Hương"],
        }
    ]
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "2023-08-14"
    assert patient["identifier"] == [
        {"system": systems.CCCD, "value": "001187012345"},
        {"system": systems.BHYT, "value": "GD4797932146557"},
    ]
    (guardian,) = resources(bundle, "RelatedPerson")
    assert guardian["relationship"][0]["coding"][0]["code"] == "GUARD"
    assert guardian["identifier"] == [{"system": systems.CCCD, "value": "001085004321"}]
    (weight,) = resources(bundle, "Observation")
    assert weight["valueQuantity"] == {"value": 11.2, "unit": "kg", "system": systems.UCUM, "code": "kg"}
    (prescriber,) = resources(bundle, "Practitioner")
    assert {"system": systems.CCHN, "value": "001234/HNO-CCHN"} in prescriber["identifier"]
    (facility,) = resources(bundle, "Organization")
    assert facility["identifier"] == [{"system": systems.FACILITY, "value": "25366"}]
    conditions = resources(bundle, "Condition")
    assert [c["code"]["coding"][0] for c in conditions] == [
        {"system": systems.ICD10, "code": "J02.9"},
        {"system": systems.ICD10, "code": "K29.7"},
    ]


def test_identity_numbers_only_when_the_caller_may_see_them() -> None:
    rx = stored_with(full_payload(), "active")
    text = json.dumps(export(rx, include_identity=False), ensure_ascii=False)
    assert "001187012345" not in text
    assert "GD4797932146557" not in text
    assert "001085004321" not in text
    assert systems.CCCD not in text and systems.BHYT not in text


def test_dispenses_become_medication_dispenses() -> None:
    payload = full_payload()
    voided = replace(a_dispense(voided=True, batch=False), dispense_id="0b1e4f")
    rx = stored_from_payload(
        payload, status="partially_dispensed", dispensed={1: 10, 2: 14}, dispenses=(a_dispense(), voided)
    )
    bundle = export(rx)
    dispenses = resources(bundle, "MedicationDispense")
    assert len(dispenses) == 4
    assert all(d["status"] in DISPENSE_STATUSES for d in dispenses)
    first = dispenses[0]
    assert first["status"] == "completed"
    assert first["contained"] == [
        {
            "resourceType": "Medication",
            "id": "product",
            "code": {"coding": [{"system": systems.REGISTRATION_NO, "code": "VD-31944-18"}]},
            "batch": {"lotNumber": "HP24118", "expirationDate": "2028-05-31"},
        }
    ]
    assert first["quantity"] == {"value": 10, "unit": "viên"}
    assert first["whenHandedOver"] == "2026-11-22T15:05:00+07:00"
    assert first["extension"] == [
        {"url": systems.EXT_UNIT_PRICE, "valueMoney": {"value": 700, "currency": "VND"}}
    ]
    lines = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert lines[first["authorizingPrescription"][0]["reference"]]["identifier"][0]["value"] == f"{rx.code}/1"
    second_sale = dispenses[2]
    assert second_sale["status"] == "entered-in-error"
    assert second_sale["statusReasonCodeableConcept"] == {"text": "Bán nhầm số lượng"}
    assert "medicationCodeableConcept" in second_sale
    # One pharmacist and one pharmacy, however many dispenses they made.
    assert len(resources(bundle, "Organization")) == 2
    assert len(resources(bundle, "Practitioner")) == 2


def test_hiv_prescriptions_carry_the_sensitivity_label() -> None:
    rx = stored_from_payload(full_payload(), sensitive=True)
    bundle = prescription_bundle(rx, include_identity=False)
    validate_bundle(bundle)
    assert bundle["meta"]["security"] == [{"system": systems.ACT_CODE, "code": "HIV"}]


def test_the_export_is_reproducible() -> None:
    rx = stored_with(full_payload(), "partially_dispensed")
    assert export(rx) == export(rx)
