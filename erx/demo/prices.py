"""Realistic synthetic listings for the demo and the benchmark (`erx demo seed-prices`).

PostgreSQL takes the rows through COPY (asyncpg's binary copy), SQLite through multi-row
INSERTs; both stream the generated rows in batches, so a million listings never sit in memory.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.cli import read_catalogue_csv, shipped_catalogue
from eprescribe.catalogue.schemas import CONTROLLED_CATEGORIES, Product
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyCreate, PharmacyKind
from kit.runtime import Runtime
from kit.time import utcnow
from pharmacy_gateway.prices import service as prices

SEED_PREFIX = "SEED"
BATCH = 20_000

# Rough centre of each province's main town, to scatter outlets for the distance sort.
CENTRES: dict[str, tuple[float, float]] = {
    "01": (21.028, 105.834),
    "04": (22.666, 106.258),
    "08": (21.823, 105.214),
    "11": (21.386, 103.023),
    "12": (22.396, 103.458),
    "14": (21.327, 103.914),
    "15": (22.300, 104.200),
    "19": (21.594, 105.848),
    "20": (21.853, 106.761),
    "22": (20.959, 107.043),
    "24": (21.230, 106.130),
    "25": (21.322, 105.402),
    "31": (20.845, 106.688),
    "33": (20.646, 106.051),
    "37": (20.251, 105.975),
    "38": (19.807, 105.776),
    "40": (18.679, 105.681),
    "42": (18.342, 105.906),
    "44": (17.200, 106.800),
    "46": (16.463, 107.590),
    "48": (16.054, 108.202),
    "51": (15.120, 108.792),
    "52": (13.900, 108.600),
    "56": (12.238, 109.196),
    "66": (12.667, 108.038),
    "68": (11.940, 108.458),
    "75": (10.957, 106.843),
    "79": (10.776, 106.700),
    "80": (10.900, 106.300),
    "82": (10.400, 106.000),
    "86": (10.253, 105.972),
    "91": (10.200, 105.250),
    "92": (10.045, 105.747),
    "96": (9.177, 105.150),
}
# The two big cities hold far more outlets than a rural province.
WEIGHTS = {"01": 10.0, "79": 12.0, "31": 3.0, "48": 2.5, "92": 2.0, "75": 2.5, "38": 2.5, "40": 2.5}
NAMES = [
    "An Khang",
    "Bình An",
    "Minh Châu",
    "Phúc Thịnh",
    "Tâm Đức",
    "Hồng Phát",
    "Thiện Tâm",
    "Gia Bảo",
    "Hoàng Long",
    "Ngọc Lan",
    "Kim Anh",
    "Thanh Bình",
    "Hạnh Phúc",
    "Việt Mỹ",
    "Sức Khỏe Vàng",
    "Đức Thành",
    "Mai Linh",
    "Phương Nam",
    "Trường Sinh",
    "Bảo Châu",
    "Hòa Bình",
    "Thu Hà",
]
STREETS = [
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Nguyễn Trãi",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Quang Trung",
    "Điện Biên Phủ",
    "Hùng Vương",
    "Nguyễn Huệ",
    "Phan Chu Trinh",
    "Lê Duẩn",
    "Cách Mạng Tháng Tám",
]
KIND_NAMES = {"pharmacy": "Nhà thuốc", "drugstore": "Quầy thuốc", "cabinet": "Tủ thuốc Trạm y tế"}
CATEGORY_WEIGHT = {
    "normal": 1.0,
    "supplement": 0.9,
    "traditional": 0.6,
    "narcotic": 0.05,
    "psychotropic": 0.15,
    "precursor": 0.15,
}
Progress = Callable[[str, int, int], None]


@dataclass
class SeedReport:
    outlets_created: int
    outlets: int
    listings: int
    history: int


@dataclass(frozen=True)
class Outlet:
    id: int
    kind: str
    province_code: str
    latitude: float | None
    longitude: float | None
    controlled: bool


async def _catalogue(session: AsyncSession) -> list[Product]:
    _, products = await catalogue.search(session, q=None, category=None, limit=1_000_000, offset=0)
    if len(products) < 10:
        # An empty database (a bench, a first try): bring in the demo catalogue first.
        rows = await asyncio.to_thread(lambda: list(read_catalogue_csv(shipped_catalogue())))
        await catalogue.import_drugs(session, rows)
        _, products = await catalogue.search(session, q=None, category=None, limit=1_000_000, offset=0)
    return products


def _new_outlets(rng: random.Random, start: int, count: int) -> list[tuple[str, PharmacyCreate]]:
    known = registry.provinces()
    codes = [c for c in CENTRES if not known or c in known]
    weights = [WEIGHTS.get(c, 1.0) for c in codes]
    outlets = []
    for number in range(start, start + count):
        province = rng.choices(codes, weights)[0]
        kind = rng.choices(list(PharmacyKind), [0.6, 0.35, 0.05])[0]
        lat, lon = CENTRES[province]
        place = known[province].name_vi if province in known else province
        data = PharmacyCreate(
            name=f"{KIND_NAMES[kind]} {rng.choice(NAMES)} {number}",
            kind=kind,
            province_code=province,
            address=f"{rng.randint(1, 399)} {rng.choice(STREETS)}, {place}",
            latitude=round(lat + rng.gauss(0, 0.08), 5),
            longitude=round(lon + rng.gauss(0, 0.08), 5),
            controlled_licence=kind == PharmacyKind.PHARMACY and rng.random() < 0.25,
        )
        outlets.append((f"{SEED_PREFIX}{province}{registry.KIND_PREFIX[kind]}{number:06d}", data))
    return outlets


def _round_price(value: float) -> int:
    step = 100 if value >= 2000 else 10
    return max(step, round(value / step) * step)


def generate(
    rng: random.Random,
    outlets: Sequence[Outlet],
    drugs: Sequence[Product],
    rows: int,
    now: datetime,
    days: int,
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """Yield (listing row, its history rows): `rows` distinct (outlet, product) pairs in all."""
    per_outlet, extra = divmod(rows, max(1, len(outlets)))
    weights = [CATEGORY_WEIGHT.get(d.category, 0.5) for d in drugs]
    for position, outlet in enumerate(outlets):
        allowed = [
            (d, w)
            for d, w in zip(drugs, weights, strict=True)
            if outlet.controlled or d.category not in CONTROLLED_CATEGORIES
        ]
        wanted = min(len(allowed), per_outlet + (1 if position < extra else 0))
        # Weighted sampling without replacement (Efraimidis-Spirakis keys).
        chosen = sorted(allowed, key=lambda dw: rng.random() ** (1.0 / dw[1]), reverse=True)[:wanted]
        # Each outlet prices a little above or below the market as a whole.
        outlet_bias = rng.gauss(0, 0.06)
        for drug, _ in chosen:
            base = drug.declared_price or 5000
            price = _round_price(base * (1.08 + outlet_bias + rng.gauss(0, 0.12)))
            at = now - timedelta(days=rng.uniform(0, days), minutes=rng.randint(0, 600))
            history = [(outlet.id, drug.id, price, drug.unit, at)]
            for _ in range(rng.choices([0, 1, 2], [0.55, 0.3, 0.15])[0]):
                at = at + (now - at) * rng.uniform(0.2, 0.9)
                price = _round_price(price * (1 + rng.gauss(0.02, 0.05)))
                history.append((outlet.id, drug.id, price, drug.unit, at))
            listing = (
                outlet.id,
                drug.id,
                price,
                drug.unit,
                outlet.province_code,
                outlet.kind,
                outlet.latitude,
                outlet.longitude,
                at,
            )
            yield listing, history


async def seed_prices(
    runtime: Runtime,
    *,
    outlets: int,
    rows: int,
    seed: int = 20261124,
    days: int = 180,
    progress: Progress | None = None,
) -> SeedReport:
    """Ensure `outlets` synthetic outlets exist and give them `rows` listings with history."""
    # Separate streams: whether outlets had to be created must not change the listings drawn.
    rng = random.Random(seed)
    listing_rng = random.Random(seed + 1)
    now = utcnow()
    report = progress or (lambda _stage, _done, _total: None)
    database = runtime.database
    async with database.sessionmaker() as session, session.begin():
        drugs = await _catalogue(session)
        existing = await registry.pharmacies_with_code_prefix(session, SEED_PREFIX)
        missing = max(0, outlets - len(existing))
        fresh = _new_outlets(rng, len(existing) + 1, missing)
        for start in range(0, len(fresh), 5000):
            await registry.register_synthetic_pharmacies(session, runtime.hasher, fresh[start : start + 5000])
            report("outlets", min(start + 5000, len(fresh)), len(fresh))
        chosen = (await registry.pharmacies_with_code_prefix(session, SEED_PREFIX))[:outlets]
    if not drugs or not chosen:
        return SeedReport(missing, len(chosen), 0, 0)
    seeded = [
        Outlet(p.id, p.kind, p.province_code, p.latitude, p.longitude, p.controlled_licence) for p in chosen
    ]
    rows = min(rows, sum(len(drugs) for _ in seeded))
    generated = generate(listing_rng, seeded, drugs, rows, now, days)
    listings = history = 0
    async with database.sessionmaker() as session, session.begin():
        first_load = not await prices.any_listed(session, [o.id for o in seeded])
        while True:
            batch = [b for b in (next(generated, None) for _ in range(BATCH)) if b is not None]
            if not batch:
                break
            listing_rows = [b[0] for b in batch]
            history_rows = [h for b in batch for h in b[1]]
            await prices.bulk_load(session, listing_rows, history_rows, fresh=first_load)
            listings += len(listing_rows)
            history += len(history_rows)
            report("listings", listings, rows)
    async with database.sessionmaker() as session, session.begin():
        # Fresh statistics, so the first searches already get the right plans.
        await prices.analyze(session)
    return SeedReport(missing, len(seeded), listings, history)
