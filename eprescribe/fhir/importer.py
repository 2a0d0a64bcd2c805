"""A FHIR MedicationRequest Bundle as the contract's payload fields (the reverse of `export`).

Each MedicationRequest is one line; the facts of the whole prescription (patient, requester,
time, kind, code, notes, follow-up, replaced code) must agree on every line. Every problem is
collected and reported with its FHIRPath.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from eprescribe.fhir import reading, systems
from eprescribe.fhir.validate import structural_problems, validate_bundle
from eprescribe.national.catalogue import Resolver
from eprescribe.national.clinical import MAX_DAYS, MAX_DIAGNOSES, MAX_ITEMS, icd10
from eprescribe.national.kinds import KINDS
from eprescribe.national.problems import (
    FORMAT,
    INVALID,
    MISMATCH,
    REQUIRED,
    UNKNOWN,
    Loc,
    MappingError,
    Problem,
    Problems,
)
from eprescribe.prescriptions.schemas import SignedFacts
from eprescribe.prescriptions.service import canonical_code
from kit.time import vn_time

Resource = Mapping[str, Any]
_SUPPLY_UNITS = {"d": 1, "day": 1, "days": 1, "ngày": 1, "wk": 7}


def _extension(element: Resource, url: str, kind: str) -> Any:
    return next((e.get(kind) for e in element.get("extension") or [] if e.get("url") == url), None)


def _coding(concept: Any, system: str) -> str | None:
    codings = concept.get("coding") or [] if isinstance(concept, Mapping) else []
    return next(
        (str(c["code"]).strip() for c in codings if c.get("system") == system and c.get("code")), None
    )


def _kind(request: Resource) -> str | None:
    kinds = [_coding(category, systems.KIND) for category in request.get("category") or []]
    return next((kind for kind in kinds if kind), None)


def _shared(request: Resource) -> dict[str, Any]:
    """The prescription-wide facts a line repeats."""
    prior = request.get("priorPrescription") or {}
    return {
        "subject": (request.get("subject") or {}).get("reference"),
        "requester": (request.get("requester") or {}).get("reference"),
        "authoredOn": request.get("authoredOn"),
        "groupIdentifier": (request.get("groupIdentifier") or {}).get("value"),
        "category": _kind(request),
        "note": "\n".join(n["text"] for n in request.get("note") or [] if n.get("text")) or None,
        # Keys are the elements they come from, so a disagreement points at the right place.
        "extension": _extension(request, systems.EXT_FOLLOW_UP, "valueDate"),
        "priorPrescription": (prior.get("identifier") or {}).get("value"),
    }


def _issued_at(value: Any, loc: Loc, problems: Problems) -> str | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) and "T" in value else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        problems.add(
            loc, "cần thời điểm kê đơn đầy đủ kèm múi giờ, ví dụ 2026-11-22T09:30:00+07:00", REQUIRED
        )
        return None
    return vn_time(moment)


def _code(value: Any, loc: Loc, problems: Problems) -> str | None:
    if value is None:
        return None
    code = canonical_code(str(value))
    if code is None:
        problems.add(loc, f"{value!r} không phải mã đơn thuốc (ví dụ 25366VMA336R-c)", FORMAT)
    return code


def _diagnoses(
    index: reading.Index, loc: Loc, request: Resource, problems: Problems, found: list[dict[str, str]]
) -> None:
    concepts: list[tuple[Loc, Any]] = [
        ((*loc, "reasonCode", i), c) for i, c in enumerate(request.get("reasonCode") or [])
    ]
    for i, reference in enumerate(request.get("reasonReference") or []):
        target_loc, condition = index.follow(reference, (*loc, "reasonReference", i), problems, "Condition")
        if condition is not None and target_loc is not None:
            concepts.append(((*target_loc, "code"), condition.get("code")))
    for concept_loc, concept in concepts:
        raw = _coding(concept, systems.ICD10)
        code = icd10(raw) if raw else None
        if code is None:
            problems.add(
                concept_loc,
                f"cần mã ICD-10 hợp lệ (hệ mã {systems.ICD10})",
                REQUIRED if raw is None else FORMAT,
            )
            continue
        codings = concept.get("coding") or []
        text = concept.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
        if not text:
            problems.add(concept_loc, "cần tên chẩn đoán (code.text)", REQUIRED)
        elif all(d["icd10"] != code for d in found):
            found.append({"icd10": code, "text": str(text)[:500]})


def _medicine(loc: Loc, concept: Any, resolve: Resolver | None, problems: Problems) -> dict[str, str] | None:
    if not isinstance(concept, Mapping):
        problems.add(loc, "cần medicationCodeableConcept (medicationReference chưa được hỗ trợ)", REQUIRED)
        return None
    number = _coding(concept, systems.REGISTRATION_NO)
    named = {
        "active_ingredient": _extension(concept, systems.EXT_INGREDIENT, "valueString"),
        "strength": _extension(concept, systems.EXT_STRENGTH, "valueString"),
        "dosage_form": _extension(concept, systems.EXT_FORM, "valueString"),
    }
    if all(named.values()):
        return {**named, **({"registration_no": number} if number else {})}
    entry = resolve(number) if number and resolve else None
    if entry is None:
        why = (
            f"không có thuốc số đăng ký {number} trong danh mục"
            if number and resolve
            else "cần hoạt chất, hàm lượng, dạng bào chế"
        )
        problems.add(
            loc,
            f"{why} (phần mở rộng {systems.EXT_INGREDIENT} ... hoặc mã {systems.REGISTRATION_NO})",
            UNKNOWN,
        )
        return None
    return {
        "active_ingredient": entry.active_ingredient,
        "strength": entry.strength,
        "dosage_form": entry.dosage_form,
        "registration_no": entry.registration_no,
    }


def _item(loc: Loc, request: Resource, resolve: Resolver | None, problems: Problems) -> dict[str, Any] | None:
    medicine = _medicine(
        (*loc, "medicationCodeableConcept"), request.get("medicationCodeableConcept"), resolve, problems
    )
    supply = request.get("dispenseRequest") or {}
    quantity = supply.get("quantity") or {}
    value, unit = quantity.get("value"), quantity.get("unit") or quantity.get("code")
    if (
        not isinstance(value, int | float)
        or not float(value).is_integer()
        or not 0 < value <= 100_000
        or not unit
    ):
        problems.add(
            (*loc, "dispenseRequest", "quantity"),
            "cần số lượng nguyên từ 1 đến 100000 và đơn vị tính",
            INVALID,
        )
        value = None
    duration = supply.get("expectedSupplyDuration") or {}
    factor = _SUPPLY_UNITS.get(duration.get("code") or duration.get("unit") or "")
    days = duration.get("value")
    if (
        factor is None
        or not isinstance(days, int | float)
        or not float(days).is_integer()
        or not 0 < days * factor <= MAX_DAYS
    ):
        problems.add(
            (*loc, "dispenseRequest", "expectedSupplyDuration"),
            f"cần số ngày dùng thuốc nguyên, 1–{MAX_DAYS} ngày",
            INVALID,
        )
        days = None
    texts = [
        d["text"].strip() for d in request.get("dosageInstruction") or [] if (d.get("text") or "").strip()
    ]
    if not texts:
        problems.add((*loc, "dosageInstruction"), "cần cách dùng (dosageInstruction.text)", REQUIRED)
    if medicine is None or value is None or days is None or not texts or factor is None:
        return None
    return {
        **medicine,
        "quantity": int(value),
        "unit": str(unit),
        "instructions": "; ".join(texts)[:1000],
        "days_supply": int(days) * factor,
    }


def _known_kind(shared: Mapping[str, Any], first_loc: Loc, problems: Problems) -> str | None:
    kind = shared["category"]
    if kind not in KINDS:
        problems.add(
            (*first_loc, "category"), f"cần loại đơn thuốc c, n, h, y hoặc t (hệ mã {systems.KIND})", REQUIRED
        )
        return None
    return str(kind)


def is_bundle(payload: Mapping[str, Any]) -> bool:
    """Whether a signed payload is a FHIR Bundle (the contract's payload refuses `resourceType`)."""
    return payload.get("resourceType") == "Bundle"


def signed_facts(bundle: Mapping[str, Any]) -> SignedFacts:
    """What a stored Bundle names of its record, read as `payload_from_bundle` read it; raise MappingError.

    From the first MedicationRequest, as the import did (every line had to agree with it).
    """
    problems = Problems()
    index = reading.Index(bundle)
    requests = index.of_type("MedicationRequest")
    if not requests:
        raise MappingError([Problem(("Bundle", "entry"), "Bundle không có MedicationRequest", REQUIRED)])
    first_loc, first = requests[0]
    shared = _shared(first)
    kind = _known_kind(shared, first_loc, problems)
    facility = reading.facility_code(index, first_loc, first, problems)
    code = _code(shared["groupIdentifier"], (*first_loc, "groupIdentifier"), problems)
    problems.raise_if_any()
    assert kind is not None and facility is not None
    return SignedFacts(facility_code=facility, kind=kind, code=code)


def payload_from_bundle(bundle: Any, *, resolve: Resolver | None = None) -> dict[str, Any]:
    """Map a Bundle to the payload fields; raise MappingError listing every problem."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise MappingError(
            [Problem(("Bundle",), "cần một tài nguyên FHIR Bundle (resourceType = Bundle)", FORMAT)]
        )
    try:
        validate_bundle(bundle)
    except ValidationError as exc:
        raise MappingError(structural_problems(exc)) from exc
    problems = Problems()
    index = reading.Index(bundle)
    requests = index.of_type("MedicationRequest")
    if not requests:
        problems.add(("Bundle", "entry"), "Bundle phải có ít nhất một MedicationRequest", REQUIRED)
        problems.raise_if_any()
    if len(requests) > MAX_ITEMS:
        problems.add(("Bundle", "entry"), f"nhiều nhất {MAX_ITEMS} MedicationRequest mỗi đơn", INVALID)
    first_loc, first = requests[0]
    shared = _shared(first)
    diagnoses: list[dict[str, str]] = []
    items: list[dict[str, Any]] = []
    for loc, request in requests:
        if request.get("intent") not in {"order", "original-order"}:
            problems.add((*loc, "intent"), "chỉ nhận y lệnh kê đơn (intent = order)", INVALID)
        if request.get("status") == "entered-in-error":
            problems.add((*loc, "status"), "y lệnh ghi nhầm (entered-in-error) không phải đơn thuốc", INVALID)
        for name, value in _shared(request).items():
            if value != shared[name]:
                problems.add((*loc, name), f"mọi dòng của một đơn phải cùng {name}", MISMATCH)
        _diagnoses(index, loc, request, problems, diagnoses)
        item = _item(loc, request, resolve, problems)
        if item is not None:
            items.append(item)
    kind = _known_kind(shared, first_loc, problems)
    if not diagnoses:
        problems.add((*first_loc, "reasonReference"), "cần ít nhất một chẩn đoán ICD-10", REQUIRED)
    elif len(diagnoses) > MAX_DIAGNOSES:
        problems.add((*first_loc, "reasonReference"), f"nhiều nhất {MAX_DIAGNOSES} chẩn đoán", INVALID)
    patient_loc, patient = index.follow(first.get("subject"), (*first_loc, "subject"), problems, "Patient")
    the_patient = reading.patient(index, patient_loc, patient, problems) if patient and patient_loc else {}
    facility = reading.facility_code(index, first_loc, first, problems)
    issued_at = _issued_at(shared["authoredOn"], (*first_loc, "authoredOn"), problems)
    code = _code(shared["groupIdentifier"], (*first_loc, "groupIdentifier"), problems)
    replaces = _code(shared["priorPrescription"], (*first_loc, "priorPrescription"), problems)
    problems.raise_if_any()
    payload: dict[str, Any] = {
        "code": code,
        "kind": kind,
        "replaces": replaces,
        "facility_code": facility,
        "issued_at": issued_at,
        "patient": the_patient,
        "diagnoses": diagnoses,
        "items": items,
        "notes": shared["note"],
        "follow_up_date": shared["extension"],
    }
    return {key: value for key, value in payload.items() if value is not None}
