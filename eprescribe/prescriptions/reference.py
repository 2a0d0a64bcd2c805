"""What the forms and doors of other modules read about prescriptions: the policy table as
data, diagnoses to pick from, code formats, and the QR drawn."""

from __future__ import annotations

import asyncio
from typing import Any

from eprescribe.prescriptions import codes, qr
from eprescribe.prescriptions.icd10 import icd10_list, search_icd10
from eprescribe.prescriptions.policy import POLICY, chronic_conditions
from eprescribe.prescriptions.schemas import PrescriptionKind


def kind_of_category() -> dict[str, str]:
    """Map catalogue category to prescription kind (traditional gives `y`; `t` is chosen by hand)."""
    found: dict[str, str] = {}
    for kind, categories in POLICY.kind_categories.items():
        if kind == PrescriptionKind.DECOCTION:
            continue
        for category in categories:
            found[str(category)] = str(kind)
    return found


def policy_for_forms() -> dict[str, Any]:
    """The policy table and the chronic list for a form's script (no copies of the rules in JS)."""
    return {
        "collection_days": POLICY.collection_days,
        "max_days_supply": POLICY.max_days_supply,
        "max_days_supply_chronic": POLICY.max_days_supply_chronic,
        "narcotic_max_days_acute": POLICY.narcotic_max_days_acute,
        "narcotic_max_days_per_round": POLICY.narcotic_max_days_per_round,
        "psychotropic_max_days_acute": POLICY.psychotropic_max_days_acute,
        "psychotropic_max_days_long_term": POLICY.psychotropic_max_days_long_term,
        "guardian_required_under_months": POLICY.guardian_required_under_months,
        "cancer_icd10_prefixes": list(POLICY.cancer_icd10_prefixes),
        "hiv_icd10_blocks": list(POLICY.hiv_icd10_blocks),
        "controlled_kinds": sorted(str(k) for k in POLICY.controlled_kinds),
        # The narcotic form names the patient by citizen ID: also on the paper.
        "national_id_required_kinds": sorted(str(k) for k in POLICY.national_id_required_kinds),
        "kind_of_category": kind_of_category(),
        "chronic_icd10": sorted(chronic_conditions().entries),
    }


def load_reference_data() -> None:
    """Read the ICD-10 and chronic-disease files now, so no request waits on file IO for them."""
    icd10_list()
    chronic_conditions()


async def search_diagnoses(q: str) -> list[dict[str, Any]]:
    """ICD-10 codes by code or name, with or without diacritics, each marked chronic or not."""
    chronic = chronic_conditions()
    found = await asyncio.to_thread(search_icd10, q) if q.strip() else []
    return [
        {"code": d.code, "name_vi": d.name_vi, "name_en": d.name_en, "chronic": chronic.covers(d.code)}
        for d in found
    ]


def canonical_code(text: str) -> str | None:
    """A typed code in canonical form (upper-case body, lower-case kind), or None if malformed."""
    return codes.canonical(text)


def code_from_scanned(text: str) -> str | None:
    """The canonical code of a typed code or of a scanned QR text (`CODE.<jws>`)."""
    return codes.from_scanned_text(text)


async def qr_svg(content: str) -> bytes:
    """The QR code as SVG, drawn in a thread (drawing is blocking)."""
    return await asyncio.to_thread(qr.svg, content)
