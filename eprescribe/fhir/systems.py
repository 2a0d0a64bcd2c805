"""Identifier systems, code systems and extensions of the national namespace, and stable ids.

Everything national lives under https://erx.gov.vn/fhir; docs/national-protocol.md lists them.
"""

from __future__ import annotations

import uuid

BASE = "https://erx.gov.vn/fhir"

# Identifier systems (NamingSystem-style `sid` URIs).
CCCD = f"{BASE}/sid/cccd"  # citizen ID (căn cước), 12 digits
BHYT = f"{BASE}/sid/bhyt"  # health-insurance card number, 15 characters
CCHN = f"{BASE}/sid/cchn"  # practising licence number (chứng chỉ hành nghề)
PRESCRIBER = f"{BASE}/sid/prescriber"  # prescriber id in the national registry (kid of the JWS)
FACILITY = f"{BASE}/sid/facility"  # 5-character facility code (cơ sở khám bệnh, chữa bệnh)
PHARMACY = f"{BASE}/sid/pharmacy"  # pharmacy connection code (mã liên thông)
PRESCRIPTION = f"{BASE}/sid/prescription"  # 14-character prescription code
PRESCRIPTION_LINE = f"{BASE}/sid/prescription-line"  # CODE/line_no
DISPENSE = f"{BASE}/sid/dispense"  # dispense_id/position
REGISTRATION_NO = f"{BASE}/sid/registration-number"  # số đăng ký of the drug catalogue

# Code systems.
KIND = f"{BASE}/CodeSystem/prescription-kind"  # c n h y t
STATUS = f"{BASE}/CodeSystem/prescription-status"  # the contract's statuses

# Extensions.
EXT_STATUS = f"{BASE}/StructureDefinition/prescription-status"
EXT_FOLLOW_UP = f"{BASE}/StructureDefinition/follow-up-date"
EXT_INGREDIENT = f"{BASE}/StructureDefinition/active-ingredient"
EXT_STRENGTH = f"{BASE}/StructureDefinition/strength"
EXT_FORM = f"{BASE}/StructureDefinition/dosage-form"
EXT_UNIT_PRICE = f"{BASE}/StructureDefinition/unit-price"

# International systems.
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
REQUEST_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BODY_WEIGHT = "29463-7"

# The contract's status -> MedicationRequest.status. R4 has no "expired" and no "replaced":
# both are "stopped" (halted before everything was handed over); the extension keeps the exact one.
REQUEST_STATUS = {
    "active": "active",
    "partially_dispensed": "active",
    "dispensed": "completed",
    "cancelled": "cancelled",
    "replaced": "stopped",
    "expired": "stopped",
}
STATUS_NAMES = {
    "active": "Còn hiệu lực",
    "partially_dispensed": "Đã bán một phần",
    "dispensed": "Đã bán đủ",
    "cancelled": "Đã hủy",
    "replaced": "Đã được thay thế",
    "expired": "Đã hết hạn",
}

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)


def stable_id(*parts: str) -> str:
    """Derive the same resource id from the same facts, so exports are reproducible."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def urn(resource_id: str) -> str:
    """Return the Bundle fullUrl of a resource id."""
    return f"urn:uuid:{resource_id}"
