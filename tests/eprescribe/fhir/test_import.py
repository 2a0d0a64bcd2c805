"""FHIR Bundles imported as the contract payload: round trips and refusals with FHIRPath."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from eprescribe.fhir import systems
from eprescribe.fhir.export import prescription_bundle
from eprescribe.fhir.importer import payload_from_bundle
from eprescribe.fhir.validate import operation_outcome
from eprescribe.national.problems import MappingError
from eprescribe.prescriptions.schemas import PrescriptionPayload
from pharmacy_gateway.fhir.dispense import dispense_entries
from tests.eprescribe.fhir.helpers import (
    KINDS,
    STATUSES,
    export,
    full_payload,
    payload_of_kind,
    resources,
    stored_with,
)
from tests.eprescribe.national.data import resolve, stored_from_payload


def problems_of(bundle: Any, **options: Any) -> dict[str, str]:
    with pytest.raises(MappingError) as caught:
        payload_from_bundle(bundle, **options)
    return {p.fhirpath(): p.message for p in caught.value.problems}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", STATUSES)
def test_export_import_export_is_stable(kind: str, status: str) -> None:
    payload = payload_of_kind(kind)
    first = export(stored_with(payload, status))
    imported = payload_from_bundle(first)
    PrescriptionPayload.model_validate(imported)
    assert imported == payload
    assert export(stored_with(imported, status)) == first


def test_a_full_prescription_round_trips() -> None:
    payload = full_payload()
    bundle = export(stored_with(payload, "partially_dispensed"))
    imported = payload_from_bundle(bundle)
    PrescriptionPayload.model_validate(imported)
    assert imported == payload
    assert imported["replaces"] == "25366ABCDEF1-c"
    assert imported["patient"]["guardian"]["national_id"] == "001085004321"


def test_a_bundle_without_identity_numbers_imports_without_them() -> None:
    payload = full_payload()
    imported = payload_from_bundle(export(stored_with(payload, "active"), include_identity=False))
    assert "national_id" not in imported["patient"]
    assert "insurance_no" not in imported["patient"]


def foreign_bundle() -> dict[str, Any]:
    """A Bundle another system writes: relative references, no erx extensions, the requester a Practitioner."""
    request = {
        "resourceType": "MedicationRequest",
        "id": "rx1",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": systems.KIND, "code": "c"}]}],
        "medicationCodeableConcept": {
            "coding": [{"system": systems.REGISTRATION_NO, "code": "VN-10956-20"}],
            "text": "Brufen 400mg",
        },
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-11-22T02:30:00Z",
        "requester": {"reference": "Practitioner/d1"},
        "reasonCode": [{"coding": [{"system": systems.ICD10, "code": "M54.5", "display": "Đau thắt lưng"}]}],
        "dosageInstruction": [{"text": "Uống 1 viên sau ăn"}, {"text": "ngày 2 lần"}],
        "dispenseRequest": {
            "quantity": {"value": 20, "unit": "viên"},
            "expectedSupplyDuration": {"value": 2, "code": "wk", "system": systems.UCUM},
        },
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "https://his.example.vn/fhir/MedicationRequest/rx1", "resource": request},
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "name": [{"family": "Lê", "given": ["Hoàng", "Nam"]}],
                    "gender": "unknown",
                    "birthDate": "1975-01-30",
                    "identifier": [{"system": systems.BHYT, "value": "dn4010119876543"}],
                    "address": [{"line": ["45 Lê Lợi"], "city": "Đà Nẵng"}],
                }
            },
            {"resource": {"resourceType": "Practitioner", "id": "d1", "name": [{"text": "Võ Thị Lan"}]}},
            {
                "resource": {
                    "resourceType": "Organization",
                    "id": "o1",
                    "identifier": [{"system": systems.FACILITY, "value": "48001"}],
                    "name": "Bệnh viện C Đà Nẵng",
                }
            },
        ],
    }


def test_a_foreign_bundle_imports_through_the_catalogue() -> None:
    imported = payload_from_bundle(foreign_bundle(), resolve=resolve)
    PrescriptionPayload.model_validate(imported)
    assert imported == {
        "kind": "c",
        "facility_code": "48001",
        "issued_at": "2026-11-22T09:30:00+07:00",
        "patient": {
            "full_name": "Lê Hoàng Nam",
            "gender": "other",
            "date_of_birth": "1975-01-30",
            "insurance_no": "DN4010119876543",
            "address": "45 Lê Lợi, Đà Nẵng",
        },
        "diagnoses": [{"icd10": "M54.5", "text": "Đau thắt lưng"}],
        "items": [
            {
                "active_ingredient": "ibuprofen",
                "strength": "400mg",
                "dosage_form": "viên nén bao phim",
                "registration_no": "VN-10956-20",
                "quantity": 20,
                "unit": "viên",
                "instructions": "Uống 1 viên sau ăn; ngày 2 lần",
                "days_supply": 14,
            }
        ],
    }


def test_without_extensions_or_a_catalogue_the_medicine_is_unknown() -> None:
    found = problems_of(foreign_bundle())
    assert found["Bundle.entry[0].resource.medicationCodeableConcept"].startswith(
        "cần hoạt chất, hàm lượng, dạng bào chế"
    )


def test_every_problem_is_listed_with_its_fhirpath() -> None:
    bundle = foreign_bundle()
    request = bundle["entry"][0]["resource"]
    request["category"] = []
    request["authoredOn"] = "2026-11-22"
    request["intent"] = "plan"
    request["reasonCode"] = [{"coding": [{"system": systems.ICD10, "code": "đau lưng"}], "text": "Đau lưng"}]
    request["dispenseRequest"] = {"quantity": {"value": 2.5, "unit": "viên"}}
    request["dosageInstruction"] = []
    patient = bundle["entry"][1]["resource"]
    patient["birthDate"] = "1975"
    del patient["gender"]
    found = problems_of(bundle, resolve=resolve)
    assert set(found) == {
        "Bundle.entry[0].resource.intent",
        "Bundle.entry[0].resource.reasonCode[0]",
        "Bundle.entry[0].resource.dispenseRequest.quantity",
        "Bundle.entry[0].resource.dispenseRequest.expectedSupplyDuration",
        "Bundle.entry[0].resource.dosageInstruction",
        "Bundle.entry[0].resource.category",
        "Bundle.entry[0].resource.reasonReference",
        "Bundle.entry[1].resource.gender",
        "Bundle.entry[1].resource.birthDate",
        "Bundle.entry[0].resource.authoredOn",
    }


def test_lines_of_one_prescription_must_agree() -> None:
    bundle = export(stored_with(full_payload(), "active"))
    second = bundle["entry"][1]["resource"]
    second["category"][1]["coding"][0]["code"] = "n"
    second["authoredOn"] = "2026-11-22T10:00:00+07:00"
    found = problems_of(bundle)
    assert found == {
        "Bundle.entry[1].resource.authoredOn": "mọi dòng của một đơn phải cùng authoredOn",
        "Bundle.entry[1].resource.category": "mọi dòng của một đơn phải cùng category",
    }


def test_a_structurally_wrong_bundle_is_refused_with_its_path() -> None:
    bundle = export(stored_with(full_payload(), "active"))
    broken = copy.deepcopy(bundle)
    resources(broken, "Patient")[0]["birthDate"] = "14/08/2023"
    found = problems_of(broken)
    (path,) = found
    assert path.startswith("Bundle.entry[")
    assert path.endswith(".resource.birthDate")
    assert found[path].startswith("không đúng cấu trúc FHIR R4")


def test_something_that_is_not_a_bundle_is_refused() -> None:
    assert problems_of({"resourceType": "Patient"}) == {
        "Bundle": "cần một tài nguyên FHIR Bundle (resourceType = Bundle)"
    }


def test_an_entered_in_error_order_is_not_a_prescription() -> None:
    bundle = foreign_bundle()
    bundle["entry"][0]["resource"]["status"] = "entered-in-error"
    assert "Bundle.entry[0].resource.status" in problems_of(bundle, resolve=resolve)


def test_a_dangling_reference_is_reported() -> None:
    bundle = foreign_bundle()
    bundle["entry"][0]["resource"]["subject"] = {"reference": "Patient/khong-co"}
    found = problems_of(bundle, resolve=resolve)
    assert (
        found["Bundle.entry[0].resource.subject"]
        == "tham chiếu 'Patient/khong-co' không trỏ tới tài nguyên nào trong Bundle"
    )


def test_problems_render_as_an_operation_outcome() -> None:
    with pytest.raises(MappingError) as caught:
        payload_from_bundle(foreign_bundle())
    outcome = operation_outcome(caught.value.problems)
    assert outcome["issue"] == [
        {
            "severity": "error",
            "code": "not-found",
            "diagnostics": caught.value.problems[0].message,
            "expression": ["Bundle.entry[0].resource.medicationCodeableConcept"],
        }
    ]


def test_the_import_accepts_an_export_with_dispenses_and_ignores_them() -> None:
    rx = stored_with(full_payload(), "partially_dispensed")
    with_dispenses = prescription_bundle(rx, include_identity=True, dispenses=dispense_entries)
    without = prescription_bundle(rx, include_identity=True)
    assert payload_from_bundle(with_dispenses) == payload_from_bundle(without)
    assert stored_from_payload(payload_from_bundle(without)).items[0].quantity == 20
