"""Reading an incoming Bundle: resolving references and the patient side of a prescription."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from eprescribe.fhir import systems
from eprescribe.national.problems import FORMAT, INVALID, REQUIRED, UNKNOWN, Loc, Problems
from eprescribe.national.values import phone as read_phone

Resource = Mapping[str, Any]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NATIONAL_ID = re.compile(r"^[0-9]{12}$")
_INSURANCE_NO = re.compile(r"^[A-Z]{2}[0-9]{13}$")
GENDERS = {"male": "male", "female": "female", "other": "other", "unknown": "other"}


class Index:
    """The entries of a Bundle, found by fullUrl or by `Type/id`."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.entries: list[tuple[Loc, Resource]] = []
        self._by_ref: dict[str, tuple[Loc, Resource]] = {}
        for index, entry in enumerate(bundle.get("entry") or []):
            resource = entry.get("resource")
            if not isinstance(resource, Mapping):
                continue
            loc: Loc = ("Bundle", "entry", index, "resource")
            self.entries.append((loc, resource))
            if entry.get("fullUrl"):
                self._by_ref[entry["fullUrl"]] = (loc, resource)
            if resource.get("id"):
                self._by_ref[f"{resource['resourceType']}/{resource['id']}"] = (loc, resource)

    def get(self, reference: Any) -> tuple[Loc, Resource] | None:
        """Return the entry a Reference points at, or None."""
        target = reference.get("reference") if isinstance(reference, Mapping) else None
        return self._by_ref.get(target) if isinstance(target, str) else None

    def of_type(self, resource_type: str) -> list[tuple[Loc, Resource]]:
        return [(loc, r) for loc, r in self.entries if r.get("resourceType") == resource_type]

    def follow(
        self, reference: Any, loc: Loc, problems: Problems, *types: str
    ) -> tuple[Loc, Resource] | tuple[None, None]:
        """Resolve a Reference inside the Bundle; record a problem when it cannot be."""
        found = self.get(reference)
        if found is None:
            target = reference.get("reference") if isinstance(reference, Mapping) else None
            problems.add(loc, f"tham chiếu {target!r} không trỏ tới tài nguyên nào trong Bundle", UNKNOWN)
            return None, None
        if found[1].get("resourceType") not in types:
            problems.add(loc, f"tham chiếu phải trỏ tới {' hoặc '.join(types)}", INVALID)
            return None, None
        return found


def identifier_value(resource: Resource, system: str) -> str | None:
    """Return the value of the first identifier with this system."""
    for found in resource.get("identifier") or []:
        if found.get("system") == system and found.get("value"):
            return str(found["value"]).strip()
    return None


def name_text(resource: Resource) -> str | None:
    """Read a HumanName: `text`, else family then given names (Vietnamese order)."""
    for name in resource.get("name") or []:
        if name.get("text"):
            return str(name["text"]).strip()
        parts = [name.get("family") or "", *(name.get("given") or [])]
        joined = " ".join(part for part in parts if part).strip()
        if joined:
            return joined
    return None


def first_phone(resource: Resource, loc: Loc, problems: Problems) -> str | None:
    for index, point in enumerate(resource.get("telecom") or []):
        if point.get("system") == "phone" and point.get("value"):
            return read_phone(point["value"], (*loc, "telecom", index, "value"), problems)
    return None


def _checked(
    value: str | None, pattern: re.Pattern[str], loc: Loc, problems: Problems, what: str
) -> str | None:
    if value is not None and not pattern.match(value):
        problems.add(loc, f"{what} không đúng dạng, nhận được {value!r}", FORMAT)
        return None
    return value


def patient(index: Index, loc: Loc, resource: Resource, problems: Problems) -> dict[str, Any]:
    """Map the Patient, its weight Observation and its guardian RelatedPerson."""
    found: dict[str, Any] = {"full_name": name_text(resource)}
    if not found["full_name"]:
        problems.add((*loc, "name"), "cần họ tên bệnh nhân", REQUIRED)
    gender = resource.get("gender")
    found["gender"] = GENDERS.get(gender or "")
    if found["gender"] is None:
        problems.add((*loc, "gender"), "cần giới tính (male, female, other hoặc unknown)", REQUIRED)
    birth = resource.get("birthDate")
    if not isinstance(birth, str) or not _DATE.match(birth):
        problems.add((*loc, "birthDate"), "cần ngày sinh đầy đủ (YYYY-MM-DD)", REQUIRED)
    else:
        found["date_of_birth"] = date.fromisoformat(birth).isoformat()
    ids = (*loc, "identifier")
    found["national_id"] = _checked(
        identifier_value(resource, systems.CCCD), _NATIONAL_ID, ids, problems, "số căn cước"
    )
    number = identifier_value(resource, systems.BHYT)
    found["insurance_no"] = _checked(
        number.upper() if number else None, _INSURANCE_NO, ids, problems, "mã thẻ BHYT"
    )
    found["phone"] = first_phone(resource, loc, problems)
    addresses = resource.get("address") or []
    if addresses:
        first = addresses[0]
        found["address"] = first.get("text") or ", ".join(
            [*(first.get("line") or []), first.get("city") or ""]
        ).strip(", ")
    found["weight_kg"] = _weight(index, resource, problems)
    found["guardian"] = _guardian(index, resource, problems)
    return {key: value for key, value in found.items() if value not in (None, "")}


def _about(index: Index, subject: Any, patient_resource: Resource) -> bool:
    found = index.get(subject)
    return found is not None and found[1] is patient_resource


def _weight(index: Index, patient_resource: Resource, problems: Problems) -> float | None:
    for loc, observation in index.of_type("Observation"):
        codes = observation.get("code", {}).get("coding") or []
        if not any(c.get("system") == systems.LOINC and c.get("code") == systems.BODY_WEIGHT for c in codes):
            continue
        if not _about(index, observation.get("subject"), patient_resource):
            continue
        quantity = observation.get("valueQuantity") or {}
        if quantity.get("code", quantity.get("unit")) != "kg" or not isinstance(
            quantity.get("value"), int | float
        ):
            problems.add((*loc, "valueQuantity"), "cân nặng phải tính bằng kg", INVALID)
            return None
        return float(quantity["value"])
    return None


def _guardian(index: Index, patient_resource: Resource, problems: Problems) -> dict[str, str] | None:
    for loc, person in index.of_type("RelatedPerson"):
        roles = [c.get("code") for r in person.get("relationship") or [] for c in r.get("coding") or []]
        if "GUARD" not in roles or not _about(index, person.get("patient"), patient_resource):
            continue
        name = name_text(person)
        if not name:
            problems.add((*loc, "name"), "cần họ tên người giám hộ", REQUIRED)
            return None
        found = {
            "full_name": name,
            "national_id": _checked(
                identifier_value(person, systems.CCCD),
                _NATIONAL_ID,
                (*loc, "identifier"),
                problems,
                "số căn cước",
            ),
            "phone": first_phone(person, loc, problems),
        }
        return {key: value for key, value in found.items() if value}
    return None


def facility_code(index: Index, request_loc: Loc, request: Resource, problems: Problems) -> str | None:
    """Find the issuing facility: the requester's organization, else the Bundle's only facility."""
    loc, requester = index.follow(
        request.get("requester"),
        (*request_loc, "requester"),
        problems,
        "PractitionerRole",
        "Practitioner",
        "Organization",
    )
    if requester is None or loc is None:
        return None
    organization: Resource | None = requester if requester.get("resourceType") == "Organization" else None
    if requester.get("resourceType") == "PractitionerRole" and requester.get("organization"):
        _, organization = index.follow(
            requester["organization"], (*loc, "organization"), problems, "Organization"
        )
    if organization is None:
        candidates = [r for _, r in index.of_type("Organization") if identifier_value(r, systems.FACILITY)]
        organization = candidates[0] if len(candidates) == 1 else None
    code = identifier_value(organization, systems.FACILITY) if organization is not None else None
    if code is None:
        problems.add(
            (*request_loc, "requester"),
            f"không tìm thấy cơ sở kê đơn có định danh {systems.FACILITY}",
            REQUIRED,
        )
    return code
