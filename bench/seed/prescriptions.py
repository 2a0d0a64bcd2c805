"""Signed prescriptions: generated patients and lines, each signed by its prescriber's own key,
with a national QR signature, identity numbers sealed as kit.pii seals them, and a `create`
entry that starts its access-log chain."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.progress import Progress

from bench import jose, project
from bench.seed.copier import Copier
from bench.seed.plan import BACKDATED, BATCH, SeedPlan
from bench.seed.world import (
    DIAGNOSES,
    INSTRUCTIONS,
    KIND_WEIGHTS,
    Drug,
    person_name,
    random_code,
    registration_for,
)
from eprescribe.prescriptions.models import INSURANCE_NO, JWS, NATIONAL_ID
from kit.pii import PiiKeys

# The columns of a line the doctor's signed payload carries (the rest are the system's).
SIGNED_LINE_FIELDS = (
    "active_ingredient",
    "strength",
    "dosage_form",
    "registration_no",
    "quantity",
    "unit",
    "instructions",
    "days_supply",
)
# The hot line's quantity: every dispense of `dispense-hot` lands on it, for as long as any run lasts.
HOT_QUANTITY = 1_000_000_000


def first_link(entry: dict[str, Any]) -> str:
    """The hash of a chain's first entry, as kit.audit computes it (the bench imports no app code)."""
    at = entry["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [entry["prescription_code"], at, entry["actor_kind"], entry["actor_code"], entry["action"], ""]
    digest = hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
    return hashlib.sha256(f":1:{digest}".encode()).hexdigest()


def _seal_identity(row: dict[str, Any], keys: PiiKeys) -> None:
    """Encrypt a seeded prescription's identity numbers and JWS, with their blind indexes."""
    national_id, insurance_no = row.get("patient_national_id"), row.get("patient_insurance_no")
    row["patient_national_id_index"] = (
        keys.blind_index(national_id.strip(), NATIONAL_ID) if national_id else None
    )
    row["patient_insurance_no_index"] = (
        keys.blind_index(insurance_no.strip().upper(), INSURANCE_NO) if insurance_no else None
    )
    row["patient_national_id"] = keys.encrypt(national_id, NATIONAL_ID) if national_id else None
    row["patient_insurance_no"] = keys.encrypt(insurance_no, INSURANCE_NO) if insurance_no else None
    row["jws"] = keys.encrypt(row["jws"], JWS)


def _generated(
    rng: random.Random,
    plan: SeedPlan,
    prescribers: list[dict[str, Any]],
    facility_names: dict[str, str],
    by_kind: dict[str, list[Drug]],
    now: datetime,
    valid_until: datetime,
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    kinds, kind_weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    keys: dict[str, tuple[str, str, str]] = {}

    def key_of(d: Drug) -> tuple[str, str, str]:
        if d.registration_no not in keys:
            keys[d.registration_no] = (
                project.match_key(d.active_ingredient), project.match_key(d.strength), project.match_key(d.dosage_form),
            )  # fmt: skip
        return keys[d.registration_no]

    while True:
        prescriber = rng.choice(prescribers)
        kind = rng.choices(kinds, kind_weights)[0]
        if kind in ("n", "h") and not prescriber["controlled"]:
            kind = "c"
        facility = rng.choice(prescriber["facilities"])
        issued = now - timedelta(seconds=rng.randint(60, int(BACKDATED.total_seconds())))
        born = date(rng.randint(1940, 2012), rng.randint(1, 12), rng.randint(1, 28))
        patient: dict[str, Any] = {
            "full_name": person_name(rng),
            "date_of_birth": born.isoformat(),
            "gender": rng.choice(["male", "female"]),
            "national_id": f"{rng.randint(0, 96):03d}{rng.randint(0, 999_999_999):09d}",
            "insurance_no": f"DN{rng.randint(0, 10**13 - 1):013d}",
        }
        diagnoses = [{"icd10": c, "text": t} for c, t in rng.sample(DIAGNOSES, rng.choice([1, 1, 2]))]
        count = rng.choices([1, 2, 3, 4, 5], [0.25, 0.3, 0.25, 0.12, 0.08])[0]
        lines = []
        for line_no, drug in enumerate(rng.sample(by_kind[kind], min(count, len(by_kind[kind]))), start=1):
            ingredient_key, strength_key, form_key = key_of(drug)
            days = rng.choice([3, 5, 7, 7, 10, 14] if kind in ("n", "h") else [5, 7, 10, 14, 30])
            quantity = days * rng.choice([1, 2, 3])
            lines.append(
                {
                    "line_no": line_no,
                    "active_ingredient": drug.active_ingredient,
                    "strength": drug.strength,
                    "dosage_form": drug.dosage_form,
                    "registration_no": drug.registration_no if rng.random() < 0.5 else None,
                    "quantity": quantity,
                    "unit": drug.unit,
                    "instructions": rng.choice(INSTRUCTIONS),
                    "days_supply": days,
                    "dispensed": 0,
                    "remaining": quantity,
                    "ingredient_key": ingredient_key,
                    "strength_key": strength_key,
                    "form_key": form_key,
                }
            )
        code = facility + random_code(rng, 7) + "-" + kind
        row: dict[str, Any] = {
            "code": code,
            "kind": kind,
            "status": "active",
            "facility_code": facility,
            "prescriber_id": prescriber["id"],
            "prescriber_name": prescriber["full_name"],
            "facility_name": facility_names[facility],
            "issued_at": issued,
            # A year of validity (not the policy's 5 days) keeps the seeded volume dispensable
            # between runs; the QR signs this same instant, so lookups by QR still verify.
            "valid_until": valid_until,
            "patient_full_name": patient["full_name"],
            "patient_date_of_birth": born,
            "patient_gender": patient["gender"],
            "patient_national_id": patient["national_id"],
            "patient_insurance_no": patient["insurance_no"],
            "diagnoses": diagnoses,
            "sensitive": False,
            "created_at": issued + timedelta(seconds=1),
            "patient": patient,
        }
        yield row, lines


class Signers:
    """The keys a seeded prescription is signed with: its prescriber's, and the national QR key."""

    def __init__(
        self, prescribers: list[dict[str, Any]], national: dict[str, str], pii_keys: PiiKeys
    ) -> None:
        self.prescribers = {p["id"]: jose.load_private(p["jwk"]) for p in prescribers}
        self.national = jose.load_private(national)
        self.national_kid = national["kid"]
        self.pii_keys = pii_keys


def _sign(p: dict[str, Any], lines: list[dict[str, Any]], signers: Signers, valid_until: datetime) -> None:
    """Sign the prescription as its prescriber would, and the QR text as the system does."""
    payload = {
        "code": p["code"],
        "kind": p["kind"],
        "facility_code": p["facility_code"],
        "issued_at": p["issued_at"].isoformat(),
        "patient": p.pop("patient"),
        "diagnoses": p["diagnoses"],
        "items": [{k: line[k] for k in SIGNED_LINE_FIELDS if line[k] is not None} for line in lines],
    }
    compact = jose.sign_compact(
        {"alg": "ES256", "kid": p["prescriber_id"]},
        json.dumps(payload, ensure_ascii=False).encode(),
        signers.prescribers[p["prescriber_id"]],
    )
    digest = project.lines_digest(
        [
            project.Line(
                line["line_no"],
                line["active_ingredient"],
                line["strength"],
                line["dosage_form"],
                line["quantity"],
                line["unit"],
            )
            for line in lines
        ]
    )
    claims = project.qr_claims(p["code"], p["kind"], p["facility_code"], valid_until, digest)
    qr = jose.sign_compact(
        {"alg": "ES256", "kid": signers.national_kid}, project.qr_payload(claims), signers.national
    )
    p.update(
        jws=compact,
        payload_digest=project.payload_digest(compact),
        lines_digest=digest,
        qr_text=f"{p['code']}.{qr}",
        diagnoses=json.dumps(p["diagnoses"], ensure_ascii=False),
    )
    _seal_identity(p, signers.pii_keys)


async def seed_prescriptions(
    copier: Copier,
    progress: Progress,
    rng: random.Random,
    plan: SeedPlan,
    *,
    prescribers: list[dict[str, Any]],
    facility_names: dict[str, str],
    by_kind: dict[str, list[Drug]],
    signers: Signers,
    now: datetime,
    valid_until: datetime,
) -> tuple[str, str]:
    """Copy the planned prescriptions in batches; returns the hot line (code, registration number)."""
    task = progress.add_task("prescriptions", total=plan.prescriptions)
    hot: tuple[str, str] | None = None
    used_codes: set[str] = set()
    next_id, next_item = 1, 1
    generator = _generated(rng, plan, prescribers, facility_names, by_kind, now, valid_until)
    while next_id <= plan.prescriptions:
        p_rows, i_rows, d_rows, log_rows, head_rows = [], [], [], [], []
        for _ in range(min(BATCH, plan.prescriptions - next_id + 1)):
            p, lines = next(generator)
            while p["code"] in used_codes:
                p["code"] = p["facility_code"] + random_code(rng, 7) + "-" + p["kind"]
            used_codes.add(p["code"])
            if hot is None and p["kind"] == "c":
                lines = lines[:1]
                lines[0]["quantity"] = lines[0]["remaining"] = HOT_QUANTITY
                hot = (p["code"], lines[0]["registration_no"] or registration_for(by_kind["c"], lines[0]))
            _sign(p, lines, signers, valid_until)
            p["id"] = next_id
            p_rows.append(p)
            d_rows.append({"payload_digest": p["payload_digest"], "prescription_code": p["code"]})
            for line in lines:
                i_rows.append(
                    {**line, "id": next_item, "prescription_id": next_id, "prescription_code": p["code"]}
                )
                next_item += 1
            entry = {
                "at": p["created_at"],
                "prescription_code": p["code"],
                "actor_kind": "facility",
                "actor_code": p["facility_code"],
                "action": "create",
            }
            # Each prescription's chain starts with its creation (kit.audit's hashes).
            chained = first_link(entry)
            log_rows.append({**entry, "seq": 1, "prev_hash": "", "entry_hash": chained})
            head_rows.append(
                {"prescription_code": p["code"], "seq": 1, "prev_hash": "", "entry_hash": chained}
            )
            next_id += 1
        await copier.copy("prescription", p_rows)
        await copier.copy("prescription_payload", d_rows)
        await copier.copy("prescription_item", i_rows)
        await copier.copy("access_log", log_rows)
        await copier.copy("access_log_head", head_rows)
        progress.advance(task, len(p_rows))
    assert hot is not None, "no prescription of kind c to carry the hot line"
    return hot
