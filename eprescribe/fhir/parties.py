"""FHIR resources of the people and places of a prescription, and of its diagnoses."""

from __future__ import annotations

from typing import Any

from eprescribe.fhir import systems
from eprescribe.national.stored import StoredDiagnosis, StoredPrescription
from kit.time import vn_time

Resource = dict[str, Any]


def human_name(full_name: str) -> dict[str, Any]:
    """Split a Vietnamese name (family name first) and keep the whole as `text`."""
    words = full_name.split()
    name: dict[str, Any] = {"use": "official", "text": full_name, "family": words[0]}
    if len(words) > 1:
        name["given"] = words[1:]
    return name


def identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value}


def patient(rx: StoredPrescription, resource_id: str, *, include_identity: bool) -> Resource:
    """Build the Patient; identity numbers only when the reader may see them."""
    person = rx.patient
    found: Resource = {
        "resourceType": "Patient",
        "id": resource_id,
        "name": [human_name(person.full_name)],
        "gender": person.gender,
        "birthDate": person.date_of_birth.isoformat(),
    }
    if include_identity:
        numbers = [(systems.CCCD, person.national_id), (systems.BHYT, person.insurance_no)]
        found["identifier"] = [identifier(system, value) for system, value in numbers if value]
        if not found["identifier"]:
            del found["identifier"]
    if person.phone:
        found["telecom"] = [{"system": "phone", "value": person.phone}]
    if person.address:
        found["address"] = [{"text": person.address}]
    return found


def guardian(
    rx: StoredPrescription, resource_id: str, patient_url: str, *, include_identity: bool
) -> Resource | None:
    """Build the guardian as a RelatedPerson (it can carry an identifier, Patient.contact cannot)."""
    person = rx.patient.guardian
    if person is None:
        return None
    found: Resource = {
        "resourceType": "RelatedPerson",
        "id": resource_id,
        "patient": {"reference": patient_url},
        "relationship": [{"coding": [{"system": systems.ROLE_CODE, "code": "GUARD", "display": "guardian"}]}],
        "name": [{"text": person.full_name}],
    }
    if include_identity and person.national_id:
        found["identifier"] = [identifier(systems.CCCD, person.national_id)]
    if person.phone:
        found["telecom"] = [{"system": "phone", "value": person.phone}]
    return found


def body_weight(rx: StoredPrescription, resource_id: str, patient_url: str) -> Resource | None:
    """Build the weight as a vital-signs Observation taken when the prescription was written."""
    if rx.patient.weight_kg is None:
        return None
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": [{"coding": [{"system": systems.OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": {
            "coding": [{"system": systems.LOINC, "code": systems.BODY_WEIGHT, "display": "Body weight"}],
            "text": "Cân nặng",
        },
        "subject": {"reference": patient_url},
        "effectiveDateTime": vn_time(rx.issued_at),
        "valueQuantity": {"value": rx.patient.weight_kg, "unit": "kg", "system": systems.UCUM, "code": "kg"},
    }


def practitioner(resource_id: str, name: str, identifiers: list[dict[str, str]]) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": resource_id,
        "identifier": identifiers,
        "name": [human_name(name)],
    }


def organization(resource_id: str, name: str, system: str, code: str) -> Resource:
    return {
        "resourceType": "Organization",
        "id": resource_id,
        "identifier": [identifier(system, code)],
        "name": name,
    }


def role(resource_id: str, practitioner_url: str, organization_url: str) -> Resource:
    """Say that the prescriber wrote this on behalf of the facility."""
    return {
        "resourceType": "PractitionerRole",
        "id": resource_id,
        "practitioner": {"reference": practitioner_url},
        "organization": {"reference": organization_url},
    }


def condition(diagnosis: StoredDiagnosis, resource_id: str, patient_url: str) -> Resource:
    return {
        "resourceType": "Condition",
        "id": resource_id,
        "category": [{"coding": [{"system": systems.CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": {"coding": [{"system": systems.ICD10, "code": diagnosis.icd10}], "text": diagnosis.text},
        "subject": {"reference": patient_url},
    }
