"""Helpers for the FHIR tests: prescriptions of every kind and status, Bundle walking, and Bundles over HTTP."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from eprescribe.fhir.export import prescription_bundle
from eprescribe.fhir.validate import validate_bundle
from eprescribe.national.mapping import to_payload
from eprescribe.national.stored import StoredPrescription
from pharmacy_gateway.fhir.dispense import dispense_entries
from tests.eprescribe.national.data import (
    FACILITY,
    a_dispense,
    body_of_kind,
    his_body,
    resolve,
    stored_from_payload,
)
from tests.factories import Api, World, sign

KINDS = ["c", "n", "h", "y", "t"]
STATUSES = ["active", "partially_dispensed", "dispensed", "cancelled", "replaced", "expired"]
# R4 value sets the mappings must stay inside (fhir.resources does not check bindings).
REQUEST_STATUSES = {
    "active",
    "on-hold",
    "cancelled",
    "completed",
    "entered-in-error",
    "stopped",
    "draft",
    "unknown",
}
DISPENSE_STATUSES = {
    "preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error", "stopped", "declined", "unknown",
}  # fmt: skip


def payload_of_kind(kind: str) -> dict[str, Any]:
    return to_payload(body_of_kind(kind), facility_code=FACILITY, resolve=resolve).payload


def full_payload() -> dict[str, Any]:
    """Two lines, two diagnoses, a guardian, a weight, notes, a follow-up and a replaced code."""
    body = his_body(ngay_sinh_benh_nhan="14/8/2023", can_nang="11,2", thong_tin_nguoi_giam_ho="Phạm Văn Đức")
    payload = to_payload(body, facility_code=FACILITY, resolve=resolve).payload
    payload["replaces"] = "25366ABCDEF1-c"
    payload["patient"]["guardian"] = {
        "full_name": "Phạm Văn Đức",
        "national_id": "001085004321",
        "phone": "0987654321",
    }
    return payload


def stored_with(payload: dict[str, Any], status: str) -> StoredPrescription:
    dispensed = {"partially_dispensed": {1: 10, 2: 14}, "dispensed": {1: 20, 2: 14}}.get(status, {})
    dispenses = (a_dispense(),) if dispensed and len(payload["items"]) > 1 else ()
    return stored_from_payload(
        payload,
        status=status,
        dispensed=dispensed,
        dispenses=dispenses,
        replaced_by="25366ZZZZZZZ-c" if status == "replaced" else None,
        cancel_reason="Bác sĩ kê nhầm liều" if status == "cancelled" else None,
    )


def export(rx: StoredPrescription, *, include_identity: bool = True) -> dict[str, Any]:
    bundle = prescription_bundle(rx, include_identity=include_identity, dispenses=dispense_entries)
    validate_bundle(bundle)
    # What goes on the wire is JSON: the mapping must survive a trip through it.
    return json.loads(json.dumps(bundle, ensure_ascii=False))  # type: ignore[no-any-return]


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def references(value: Any) -> list[str]:
    """Every `reference` string anywhere in a JSON value."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def parsed(bundle: dict[str, Any]) -> Bundle:
    return validate_bundle(bundle)


async def fhir_of(api: Api, w: World, code: str) -> dict[str, Any]:
    r = await api.client.get(f"/api/v1/prescriptions/{code}/fhir", headers=w.facility.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = r.json()
    return body


async def submit_bundle(api: Api, w: World, bundle: dict[str, Any], *, kind: str = "c") -> Any:
    prescriber = w.controlled_prescriber if kind in "nh" else w.prescriber
    jws = sign(bundle, prescriber.key, prescriber.prescriber_id)
    return await api.client.post("/api/v1/prescriptions/fhir", json={"jws": jws}, headers=w.facility.headers)


def fresh_copy(bundle: dict[str, Any], facility_code: str, kind: str) -> dict[str, Any]:
    """The exported Bundle as a new prescription: a new code, and the export's live facts dropped."""
    code = f"{facility_code}{secrets.token_hex(4).upper()[:7]}-{kind}"
    for request in resources(bundle, "MedicationRequest"):
        request["groupIdentifier"]["value"] = code
        request["status"] = "active"
        request.pop("statusReason", None)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "MedicationDispense"]
    return bundle
