"""Realistic volume, seeded once with PostgreSQL COPY and reused between runs.

Rows are generated here, not through the project's services: the column lists come from the
database itself (information_schema), so a model refactoring that keeps the schema keeps the seed
working, and a schema change fails loudly (a required column the seed does not fill).

What is seeded (defaults): the catalogue (eprescribe/data/drugs.csv), 400 facilities, 2,000
prescribers with their own EC P-256 keys, 2,500 pharmacies, 1,000,000 price listings with their
history, and 200,000 signed prescriptions (1-5 lines, mostly kind `c`) with a valid national QR
signature and a `create` entry in the access log. A marker table (`bench_seed`) says the
database is complete; `var/bench/registry.json` keeps the secrets and private keys the load needs.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import random
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench import jose, project
from eprescribe.prescriptions.models import INSURANCE_NO, JWS, NATIONAL_ID
from kit.pii import PiiKeys

# 3: the access log is chained (kit.audit); 4: identity numbers encrypted (kit.pii);
# 5: every prescriber's key is in the key history (prescriber_key).
SEED_VERSION = 5
# Seeds a later version can reuse: migrations bring them up to date in place (version 4's key
# history is backfilled by the migration that adds it; only `erx audit verify --signatures`
# would tell, as its prescriptions predate their prescribers' registration there).
REUSABLE_VERSIONS = (4, SEED_VERSION)
DATABASE = "erx_bench"
BATCH = 10_000
# Prescriptions are issued up to this long before the seed runs; each prescriber's key is
# registered as current since then.
BACKDATED = timedelta(days=3)


def _first_link(entry: dict[str, Any]) -> str:
    """The hash of a chain's first entry, as kit.audit computes it (the bench imports no app code)."""
    at = entry["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [entry["prescription_code"], at, entry["actor_kind"], entry["actor_code"], entry["action"], ""]
    digest = hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
    return hashlib.sha256(f":1:{digest}".encode()).hexdigest()


PROVINCES = {
    "01": (21.028, 105.834, 10.0),
    "79": (10.776, 106.700, 12.0),
    "31": (20.845, 106.688, 3.0),
    "48": (16.054, 108.202, 2.5),
    "92": (10.045, 105.747, 2.0),
    "75": (10.957, 106.843, 2.5),
    "38": (19.807, 105.776, 2.5),
    "40": (18.679, 105.681, 2.5),
    "46": (16.463, 107.590, 1.5),
    "56": (12.238, 109.196, 1.2),
    "66": (12.667, 108.038, 1.0),
    "22": (20.959, 107.043, 1.5),
    "24": (21.230, 106.130, 1.0),
    "19": (21.594, 105.848, 1.0),
    "86": (10.253, 105.972, 1.0),
    "96": (9.177, 105.150, 1.0),
}
FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Đức", "Thu", "Quang", "Hoài", "Gia", "Bảo"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Hà", "Hải", "Hạnh", "Hùng", "Lan", "Linh", "Long", "Mai", "Nam"]
GIVEN += ["Nga", "Phúc", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Trung", "Tuấn", "Vân", "Yến"]
STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt", "Quang Trung"]
STREETS += ["Điện Biên Phủ", "Hùng Vương", "Nguyễn Huệ", "Phan Chu Trinh", "Lê Duẩn", "Giải Phóng"]
OUTLET_NAMES = ["An Khang", "Bình An", "Minh Châu", "Phúc Thịnh", "Tâm Đức", "Hồng Phát", "Thiện Tâm"]
OUTLET_NAMES += ["Gia Bảo", "Hoàng Long", "Ngọc Lan", "Kim Anh", "Thanh Bình", "Việt Mỹ", "Mai Linh"]
KIND_NAMES = {"pharmacy": "Nhà thuốc", "drugstore": "Quầy thuốc", "cabinet": "Tủ thuốc Trạm y tế"}
KIND_PREFIX = {"pharmacy": "NT", "drugstore": "QT", "cabinet": "TT"}
# Common outpatient diagnoses (none chronic, none HIV): 30 days of supply at most is allowed.
DIAGNOSES = [
    ("J06.9", "Nhiễm trùng đường hô hấp trên cấp"),
    ("J02.9", "Viêm họng cấp"),
    ("J20.9", "Viêm phế quản cấp"),
    ("K29.7", "Viêm dạ dày"),
    ("M54.5", "Đau thắt lưng"),
    ("R51", "Đau đầu"),
    ("L30.9", "Viêm da"),
    ("H10.9", "Viêm kết mạc"),
    ("N39.0", "Nhiễm khuẩn đường tiết niệu"),
    ("A09", "Tiêu chảy và viêm dạ dày ruột"),
]
INSTRUCTIONS = ["Uống 1 viên x 2 lần/ngày sau ăn", "Uống 1 viên buổi sáng", "Uống 2 viên x 3 lần/ngày"]
KIND_WEIGHTS = {"c": 0.92, "h": 0.03, "n": 0.01, "y": 0.03, "t": 0.01}
CATEGORY_WEIGHT = {"normal": 1.0, "supplement": 0.9, "traditional": 0.6}


@dataclass
class SeedPlan:
    prescriptions: int = 200_000
    price_rows: int = 1_000_000
    pharmacies: int = 2_500
    facilities: int = 400
    prescribers: int = 2_000
    seed: int = 20261124

    def matches(self, other: dict[str, Any]) -> bool:
        return all(other.get(k) == v for k, v in asdict(self).items())


@dataclass
class Registry:
    """What the load needs to know of the seeded world (secrets, keys, codes)."""

    secret: str
    signing_key: dict[str, str]
    facilities: list[str]
    prescribers: list[dict[str, Any]]
    pharmacies: list[str]
    hot_code: str
    hot_registration_no: str
    normal_lines: list[dict[str, str]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Registry:
        return cls(**json.loads(path.read_text()))


def _code(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(project.CODE_ALPHABET) for _ in range(length))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint of an EC public key."""
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    return jose.b64url(hashlib.sha256(canonical.encode()).digest())


class Copier:
    """COPY rows given as dicts into a table, with the column list reflected from the database."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._columns: dict[str, list[tuple[str, bool]]] = {}

    async def columns(self, table: str) -> list[tuple[str, bool]]:
        if table not in self._columns:
            rows = await self.conn.fetch(
                "SELECT column_name, is_nullable = 'NO' AND column_default IS NULL AS required "
                "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
                "ORDER BY ordinal_position",
                table,
            )
            if not rows:
                raise RuntimeError(f"table {table} does not exist; did the migrations run?")
            self._columns[table] = [(r["column_name"], r["required"]) for r in rows]
        return self._columns[table]

    async def copy(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = await self.columns(table)
        given = set(rows[0])
        missing = [name for name, required in columns if required and name not in given]
        unknown = given - {name for name, _ in columns}
        if missing or unknown:
            raise RuntimeError(
                f"{table}: the seed lacks required columns {missing} / has unknown {sorted(unknown)}"
            )
        names = [name for name, _ in columns if name in given]
        await self.conn.copy_records_to_table(
            table, records=[tuple(row[n] for n in names) for row in rows], columns=names
        )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@dataclass
class Drug:
    id: int
    registration_no: str
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    unit: str
    category: str
    declared_price: int | None


def read_catalogue() -> list[dict[str, Any]]:
    with project.catalogue_csv().open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def seed(
    conn: asyncpg.Connection,
    plan: SeedPlan,
    registry_path: Path,
    console: Console,
    now: datetime,
    database_url: str,
) -> Registry:
    """Fill an empty, migrated database; returns what the load needs and saves it."""
    rng = random.Random(plan.seed)
    copier = Copier(conn)
    secret = secrets.token_urlsafe(24)
    secret_hash = await asyncio.to_thread(project.hash_secret, secret)
    national = jose.private_jwk(jose.generate())
    # The identity numbers and the JWS are stored encrypted, under the key the bench server
    # reads from its data directory (kit.pii), as the app itself writes them.
    pii_keys = PiiKeys.load(project.settings_for(database_url, national, registry_path.parent / "data"))
    national["kid"] = thumbprint(national)[:16]
    valid_until = (now + timedelta(days=365)).replace(microsecond=0)

    with _progress(console) as progress:
        # Catalogue.
        catalogue = read_catalogue()
        task = progress.add_task("catalogue", total=len(catalogue))
        drug_rows = []
        for row in catalogue:
            price = (row.get("declared_price") or "").strip()
            drug_rows.append(
                {
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
            )
        await copier.copy("drug", drug_rows)
        progress.update(task, completed=len(catalogue))
        drugs = [
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

        # Facilities, prescribers (each with a key of their own), pharmacies.
        task = progress.add_task("registry", total=plan.facilities + plan.prescribers + plan.pharmacies)
        provinces = list(PROVINCES)
        weights = [PROVINCES[p][2] for p in provinces]
        facility_codes: list[str] = []
        taken: set[str] = set()
        while len(facility_codes) < plan.facilities:
            code = rng.choices(provinces, weights)[0] + _code(rng, 3)
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
        prescribers: list[dict[str, Any]] = []
        prescriber_rows, links, key_rows = [], [], []
        for i in range(plan.prescribers):
            jwk = jose.private_jwk(jose.generate())
            pid = f"BS{i:08d}"
            works_at = sorted(set(rng.sample(facility_codes, rng.choice([1, 1, 1, 2]))))
            controlled = rng.random() < 0.15
            full_name = f"BS. {_name(rng)}"
            prescribers.append(
                {
                    "id": pid,
                    "jwk": jwk,
                    "facilities": works_at,
                    "controlled": controlled,
                    "full_name": full_name,
                }
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
        progress.advance(task, plan.prescribers)
        pharmacy_rows = []
        codes: set[str] = set()
        for i in range(plan.pharmacies):
            province = rng.choices(provinces, weights)[0]
            kind = rng.choices(["pharmacy", "drugstore", "cabinet"], [0.6, 0.35, 0.05])[0]
            code = f"{province}{KIND_PREFIX[kind]}{_code(rng, 6)}"
            if code in codes:
                continue
            codes.add(code)
            lat, lon, _ = PROVINCES[province]
            pharmacy_rows.append(
                {
                    "connection_code": code,
                    "name": f"{KIND_NAMES[kind]} {rng.choice(OUTLET_NAMES)} {i}",
                    "kind": kind,
                    "province_code": province,
                    "address": f"{rng.randint(1, 399)} {rng.choice(STREETS)}",
                    "latitude": round(lat + rng.gauss(0, 0.08), 5),
                    "longitude": round(lon + rng.gauss(0, 0.08), 5),
                    # The first 64 outlets dispense for the load: licensed for every kind.
                    "controlled_licence": i < 64 or (kind == "pharmacy" and rng.random() < 0.25),
                    "secret_hash": secret_hash,
                    "status": "active",
                    "credentials_version": 1,
                    "created_at": now,
                }
            )
        await copier.copy("pharmacy", pharmacy_rows)
        progress.advance(task, plan.pharmacies)
        outlets = await conn.fetch(
            "SELECT id, kind, province_code, latitude, longitude, controlled_licence FROM pharmacy ORDER BY id"
        )

        # Price listings and their history.
        task = progress.add_task("price listings", total=plan.price_rows)
        per_outlet, extra = divmod(plan.price_rows, len(outlets))
        listings: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        done = 0
        for position, outlet in enumerate(outlets):
            allowed = [
                d
                for d in drugs
                if outlet["controlled_licence"] or d.category not in project.CONTROLLED_CATEGORIES
            ]
            wanted = min(len(allowed), per_outlet + (1 if position < extra else 0))
            keyed = sorted(
                allowed,
                key=lambda d: rng.random() ** (1.0 / CATEGORY_WEIGHT.get(d.category, 0.3)),
                reverse=True,
            )
            bias = rng.gauss(0, 0.06)
            for drug in keyed[:wanted]:
                price = _round_price((drug.declared_price or 5000) * (1.08 + bias + rng.gauss(0, 0.12)))
                at = now - timedelta(days=rng.uniform(0, 180), minutes=rng.randint(0, 600))
                history.append(
                    {
                        "pharmacy_id": outlet["id"],
                        "drug_id": drug.id,
                        "price": price,
                        "unit": drug.unit,
                        "recorded_at": at,
                    }
                )
                for _ in range(rng.choices([0, 1, 2], [0.55, 0.3, 0.15])[0]):
                    at = at + (now - at) * rng.uniform(0.2, 0.9)
                    price = _round_price(price * (1 + rng.gauss(0.02, 0.05)))
                    history.append(
                        {
                            "pharmacy_id": outlet["id"],
                            "drug_id": drug.id,
                            "price": price,
                            "unit": drug.unit,
                            "recorded_at": at,
                        }
                    )
                listings.append(
                    {
                        "pharmacy_id": outlet["id"],
                        "drug_id": drug.id,
                        "price": price,
                        "unit": drug.unit,
                        "province_code": outlet["province_code"],
                        "outlet_kind": outlet["kind"],
                        "latitude": outlet["latitude"],
                        "longitude": outlet["longitude"],
                        "updated_at": at,
                    }
                )
            if len(listings) >= 5 * BATCH or position == len(outlets) - 1:
                await copier.copy("price_listing", listings)
                await copier.copy("price_history", history)
                done += len(listings)
                progress.update(task, completed=done)
                listings, history = [], []
        progress.update(task, total=done)

        # Prescriptions, their lines and the access log's `create` entries.
        by_kind: dict[str, list[Drug]] = {
            kind: [d for d in drugs if d.category in cats] for kind, cats in project.KIND_CATEGORIES.items()
        }
        signers = {p["id"]: jose.load_private(p["jwk"]) for p in prescribers}
        national_key = jose.load_private(national)
        task = progress.add_task("prescriptions", total=plan.prescriptions)
        hot: tuple[str, str] | None = None
        used_codes: set[str] = set()
        next_id, next_item = 1, 1
        generator = _prescriptions(rng, plan, prescribers, facility_names, by_kind, now, valid_until)
        while next_id <= plan.prescriptions:
            p_rows, i_rows, d_rows, log_rows, head_rows = [], [], [], [], []
            for _ in range(min(BATCH, plan.prescriptions - next_id + 1)):
                p, lines = next(generator)
                while p["code"] in used_codes:
                    p["code"] = p["facility_code"] + _code(rng, 7) + "-" + p["kind"]
                used_codes.add(p["code"])
                if hot is None and p["kind"] == "c":
                    # The hot line: every dispense of `dispense-hot` lands here.
                    lines = lines[:1]
                    lines[0]["quantity"] = lines[0]["remaining"] = 1_000_000_000
                    hot = (
                        p["code"],
                        lines[0]["registration_no"] or _registration_for(by_kind["c"], lines[0]),
                    )
                payload = {
                    "code": p["code"],
                    "kind": p["kind"],
                    "facility_code": p["facility_code"],
                    "issued_at": p["issued_at"].isoformat(),
                    "patient": p.pop("patient"),
                    "diagnoses": p["diagnoses"],
                    "items": [
                        {
                            k: line[k]
                            for k in (
                                "active_ingredient",
                                "strength",
                                "dosage_form",
                                "registration_no",
                                "quantity",
                                "unit",
                                "instructions",
                                "days_supply",
                            )
                            if line[k] is not None
                        }
                        for line in lines
                    ],
                }
                compact = jose.sign_compact(
                    {"alg": "ES256", "kid": p["prescriber_id"]},
                    json.dumps(payload, ensure_ascii=False).encode(),
                    signers[p["prescriber_id"]],
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
                    {"alg": "ES256", "kid": national["kid"]}, project.qr_payload(claims), national_key
                )
                p.update(
                    id=next_id,
                    jws=compact,
                    payload_digest=project.payload_digest(compact),
                    lines_digest=digest,
                    qr_text=f"{p['code']}.{qr}",
                    diagnoses=json.dumps(p["diagnoses"], ensure_ascii=False),
                )
                _seal_identity(p, pii_keys)
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
                chained = _first_link(entry)
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
        for table in ("prescription", "prescription_item"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        # Tables the system derives from the rows copied above: search words, listing counts.
        task = progress.add_task("derived tables", total=1)
        await asyncio.to_thread(project.refresh_derived, database_url)
        progress.advance(task)
        task = progress.add_task("vacuum analyze", total=1)
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
        progress.advance(task)

    assert hot is not None
    registry = Registry(
        secret=secret,
        signing_key=national,
        facilities=facility_codes,
        prescribers=prescribers,
        pharmacies=[str(r["connection_code"]) for r in pharmacy_rows[:64]],
        hot_code=hot[0],
        hot_registration_no=hot[1],
        normal_lines=[
            {
                "active_ingredient": d.active_ingredient,
                "strength": d.strength,
                "dosage_form": d.dosage_form,
                "unit": d.unit,
                "registration_no": d.registration_no,
            }
            for d in by_kind["c"]
        ],
    )
    registry.save(registry_path)
    await conn.execute(
        "CREATE TABLE bench_seed (version int NOT NULL, plan jsonb NOT NULL, seeded_at timestamptz NOT NULL, "
        "valid_until timestamptz NOT NULL)"
    )
    await conn.execute(
        "INSERT INTO bench_seed VALUES ($1, $2, $3, $4)",
        SEED_VERSION,
        json.dumps(asdict(plan)),
        now,
        valid_until,
    )
    return registry


def _registration_for(drugs: Sequence[Drug], line: dict[str, Any]) -> str:
    key = (
        project.match_key(line["active_ingredient"]),
        project.match_key(line["strength"]),
        project.match_key(line["dosage_form"]),
    )
    for d in drugs:
        if (
            project.match_key(d.active_ingredient),
            project.match_key(d.strength),
            project.match_key(d.dosage_form),
        ) == key:
            return d.registration_no
    raise RuntimeError("no product for the hot line")


def _round_price(value: float) -> int:
    step = 100 if value >= 2000 else 10
    return max(step, round(value / step) * step)


def _prescriptions(
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
            "full_name": _name(rng),
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
        code = facility + _code(rng, 7) + "-" + kind
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


async def connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url)


async def ensure(
    admin_url: str,
    url_of: Callable[[str], str],
    plan: SeedPlan,
    registry_path: Path,
    console: Console,
    *,
    reseed: bool = False,
) -> Registry:
    """Reuse the seeded database when it is complete and matches the plan; else seed it anew."""
    now = datetime.now(UTC)
    admin = await asyncpg.connect(admin_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if exists and not reseed and await asyncio.to_thread(registry_path.exists):
            conn = await asyncpg.connect(url_of(DATABASE))
            try:
                marker = None
                if await conn.fetchval("SELECT to_regclass('bench_seed') IS NOT NULL"):
                    marker = await conn.fetchrow("SELECT version, plan, valid_until FROM bench_seed LIMIT 1")
            finally:
                await conn.close()
            if (
                marker is not None
                and marker["version"] in REUSABLE_VERSIONS
                and plan.matches(json.loads(marker["plan"]))
                and marker["valid_until"] > now + timedelta(days=2)
            ):
                console.print(
                    f"Reusing the seeded database [bold]{DATABASE}[/] ({plan.prescriptions:,} prescriptions, {plan.price_rows:,} price rows)"
                )
                # Migrations added since the seed run in place (a no-op at the head), as in production.
                await asyncio.to_thread(project.migrate, url_of(DATABASE))
                return Registry.load(registry_path)
            console.print("The seeded database is incomplete, stale or of another plan: seeding it anew")
        if exists:
            await admin.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    console.print(f"Seeding [bold]{DATABASE}[/]: migrations …")
    await asyncio.to_thread(project.migrate, url_of(DATABASE))
    conn = await asyncpg.connect(url_of(DATABASE))
    try:
        return await seed(conn, plan, registry_path, console, now, url_of(DATABASE))
    finally:
        await conn.close()
