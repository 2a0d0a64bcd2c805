"""The catalogue and the registry's clients: facilities, prescribers (each with a key of their own)
and pharmacies."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from rich.progress import Progress

from bench import jose, project
from bench.seed.copier import Copier
from bench.seed.plan import BACKDATED, SeedPlan
from bench.seed.world import (
    KIND_NAMES,
    KIND_PREFIX,
    OUTLET_NAMES,
    PROVINCES,
    STREETS,
    Drug,
    person_name,
    random_code,
    read_catalogue,
    thumbprint,
)

# The first this many outlets dispense for the load: licensed for every kind.
LOAD_PHARMACIES = 64


@dataclass
class Clients:
    """The registry as the later stages need it."""

    facility_codes: list[str]
    facility_names: dict[str, str]
    prescribers: list[dict[str, Any]]
    pharmacy_codes: list[str]
    outlets: list[asyncpg.Record]


def _drug_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    price = (row.get("declared_price") or "").strip()
    return {
        "registration_no": row["registration_no"].strip(),
        "name": row["name"].strip(),
        "active_ingredient": row["active_ingredient"].strip(),
        "strength": row["strength"].strip(),
        "dosage_form": row["dosage_form"].strip(),
        "unit": row["unit"].strip(),
        "packaging": (row.get("packaging") or "").strip() or None,
        "manufacturer": (row.get("manufacturer") or "").strip() or None,
        "country": (row.get("country") or "").strip() or None,
        "category": row["category"].strip(),
        "declared_price": int(price) if price else None,
        **project.drug_row_keys(
            row["name"].strip(),
            row["active_ingredient"].strip(),
            row["strength"].strip(),
            row["dosage_form"].strip(),
            row["registration_no"].strip(),
        ),
        "created_at": now,
        "updated_at": now,
    }


async def seed_catalogue(
    conn: asyncpg.Connection, copier: Copier, progress: Progress, now: datetime
) -> list[Drug]:
    catalogue = read_catalogue()
    task = progress.add_task("catalogue", total=len(catalogue))
    await copier.copy("drug", [_drug_row(row, now) for row in catalogue])
    progress.update(task, completed=len(catalogue))
    return [
        Drug(
            r["id"],
            r["registration_no"],
            r["name"],
            r["active_ingredient"],
            r["strength"],
            r["dosage_form"],
            r["unit"],
            r["category"],
            r["declared_price"],
        )
        for r in await conn.fetch("SELECT * FROM drug ORDER BY id")
    ]


async def seed_clients(
    conn: asyncpg.Connection,
    copier: Copier,
    progress: Progress,
    rng: random.Random,
    plan: SeedPlan,
    *,
    secret_hash: str,
    now: datetime,
) -> Clients:
    """Every client shares one secret (hashed once): the load signs in as any of them."""
    task = progress.add_task("registry", total=plan.facilities + plan.prescribers + plan.pharmacies)
    provinces = list(PROVINCES)
    weights = [PROVINCES[p][2] for p in provinces]
    facility_codes: list[str] = []
    taken: set[str] = set()
    while len(facility_codes) < plan.facilities:
        code = rng.choices(provinces, weights)[0] + random_code(rng, 3)
        if code not in taken:
            taken.add(code)
            facility_codes.append(code)
    facility_names = {
        code: f"{rng.choice(['Bệnh viện', 'Phòng khám', 'Trung tâm Y tế'])} {rng.choice(OUTLET_NAMES)} {i}"
        for i, code in enumerate(facility_codes)
    }
    await copier.copy(
        "facility",
        [
            {
                "facility_code": code,
                "name": facility_names[code],
                "province_code": code[:2],
                "secret_hash": secret_hash,
                "status": "active",
                "credentials_version": 1,
                "created_at": now,
            }
            for code in facility_codes
        ],
    )
    progress.advance(task, plan.facilities)
    prescribers = await _seed_prescribers(copier, rng, plan, facility_codes, now)
    progress.advance(task, plan.prescribers)
    pharmacy_rows = _pharmacy_rows(rng, plan, provinces, weights, secret_hash=secret_hash, now=now)
    await copier.copy("pharmacy", pharmacy_rows)
    progress.advance(task, plan.pharmacies)
    outlets = await conn.fetch(
        "SELECT id, kind, province_code, latitude, longitude, controlled_licence FROM pharmacy ORDER BY id"
    )
    return Clients(
        facility_codes=facility_codes,
        facility_names=facility_names,
        prescribers=prescribers,
        pharmacy_codes=[str(r["connection_code"]) for r in pharmacy_rows],
        outlets=list(outlets),
    )


async def _seed_prescribers(
    copier: Copier, rng: random.Random, plan: SeedPlan, facility_codes: list[str], now: datetime
) -> list[dict[str, Any]]:
    prescribers: list[dict[str, Any]] = []
    prescriber_rows, links, key_rows = [], [], []
    for i in range(plan.prescribers):
        jwk = jose.private_jwk(jose.generate())
        pid = f"BS{i:08d}"
        works_at = sorted(set(rng.sample(facility_codes, rng.choice([1, 1, 1, 2]))))
        controlled = rng.random() < 0.15
        full_name = f"BS. {person_name(rng)}"
        prescribers.append(
            {"id": pid, "jwk": jwk, "facilities": works_at, "controlled": controlled, "full_name": full_name}
        )
        public = jose.public_jwk(jwk)
        prescriber_rows.append(
            {
                "prescriber_id": pid,
                "full_name": full_name,
                "license_no": f"{i:06d}/BENCH-CCHN",
                "public_jwk": json.dumps(public),
                "key_thumbprint": thumbprint(public),
                "controlled_allowed": controlled,
                "status": "active",
                "created_at": now,
            }
        )
        links += [{"prescriber_id": pid, "facility_code": f} for f in works_at]
        key_rows.append(
            {
                "prescriber_id": pid,
                "thumbprint": thumbprint(public),
                "public_jwk": json.dumps(public),
                # Current before the oldest back-dated prescription, so `erx audit verify
                # --signatures` finds each one's key.
                "registered_at": now - BACKDATED,
            }
        )
    await copier.copy("prescriber", prescriber_rows)
    await copier.copy("prescriber_facility", links)
    await copier.copy("prescriber_key", key_rows)
    return prescribers


def _pharmacy_rows(
    rng: random.Random,
    plan: SeedPlan,
    provinces: list[str],
    weights: list[float],
    *,
    secret_hash: str,
    now: datetime,
) -> list[dict[str, Any]]:
    rows = []
    codes: set[str] = set()
    for i in range(plan.pharmacies):
        province = rng.choices(provinces, weights)[0]
        kind = rng.choices(["pharmacy", "drugstore", "cabinet"], [0.6, 0.35, 0.05])[0]
        code = f"{province}{KIND_PREFIX[kind]}{random_code(rng, 6)}"
        if code in codes:
            continue
        codes.add(code)
        lat, lon, _ = PROVINCES[province]
        rows.append(
            {
                "connection_code": code,
                "name": f"{KIND_NAMES[kind]} {rng.choice(OUTLET_NAMES)} {i}",
                "kind": kind,
                "province_code": province,
                "address": f"{rng.randint(1, 399)} {rng.choice(STREETS)}",
                "latitude": round(lat + rng.gauss(0, 0.08), 5),
                "longitude": round(lon + rng.gauss(0, 0.08), 5),
                "controlled_licence": i < LOAD_PHARMACIES or (kind == "pharmacy" and rng.random() < 0.25),
                "secret_hash": secret_hash,
                "status": "active",
                "credentials_version": 1,
                "created_at": now,
            }
        )
    return rows
