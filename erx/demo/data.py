"""Demo data: one health-department client, facilities, prescribers, pharmacies, catalogue, prices."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.cli import read_catalogue_csv, shipped_catalogue
from eprescribe.catalogue.schemas import CONTROLLED_CATEGORIES
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import FacilityCreate, PharmacyCreate, PharmacyKind, PrescriberCreate
from erx.demo.prices import seed_prices
from kit.runtime import Runtime
from kit.security import new_secret
from kit.settings import Settings
from pharmacy_gateway.prices import service as prices

ADMIN_CLIENT_ID = "demo-admin"
DEMO_SEEDED_OUTLETS = 60
DEMO_SEEDED_LISTINGS = 8000

FACILITIES = [
    ("01001", "Bệnh viện Bạch Mai", "01"),
    ("79001", "Bệnh viện Chợ Rẫy", "79"),
    ("48001", "Phòng khám Đa khoa Hải Châu", "48"),
]
PRESCRIBERS = [
    # license_no, full_name, facility codes, controlled_allowed
    ("001234/HNO-CCHN", "BS. Nguyễn Thị Lan", ["01001"], True),
    ("002345/HNO-CCHN", "BS. Trần Văn Minh", ["01001"], False),
    ("003456/HCM-CCHN", "BS. Lê Hoàng Phúc", ["79001"], True),
    ("004567/DNA-CCHN", "BS. Phạm Thu Hà", ["48001", "01001"], False),
]
PHARMACIES = [
    # fixed connection code, name, kind, province, address, lat, lon, controlled licence
    (
        "01NTDEMO01",
        "Nhà thuốc Long Châu 125 Giải Phóng",
        PharmacyKind.PHARMACY,
        "01",
        "125 Giải Phóng, Hai Bà Trưng, Hà Nội",
        21.0006,
        105.8412,
        True,
    ),
    (
        "01NTDEMO02",
        "Nhà thuốc Pharmacity Kim Mã",
        PharmacyKind.PHARMACY,
        "01",
        "245 Kim Mã, Ba Đình, Hà Nội",
        21.0316,
        105.8150,
        False,
    ),
    (
        "01QTDEMO03",
        "Quầy thuốc Minh Anh",
        PharmacyKind.DRUGSTORE,
        "01",
        "12 Ngọc Hồi, Thanh Trì, Hà Nội",
        20.9500,
        105.8440,
        False,
    ),
    (
        "79NTDEMO04",
        "Nhà thuốc An Khang Nguyễn Trãi",
        PharmacyKind.PHARMACY,
        "79",
        "310 Nguyễn Trãi, Quận 5, TP. Hồ Chí Minh",
        10.7553,
        106.6670,
        True,
    ),
    (
        "79NTDEMO05",
        "Nhà thuốc Bệnh viện Chợ Rẫy",
        PharmacyKind.PHARMACY,
        "79",
        "201B Nguyễn Chí Thanh, Quận 5, TP. Hồ Chí Minh",
        10.7579,
        106.6597,
        True,
    ),
    (
        "48TTDEMO06",
        "Tủ thuốc Trạm y tế phường Hải Châu",
        PharmacyKind.CABINET,
        "48",
        "02 Lê Duẩn, Hải Châu, Đà Nẵng",
        16.0716,
        108.2220,
        False,
    ),
]


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / "demo-credentials.json"


async def _upsert(session: AsyncSession, runtime: Runtime) -> dict[str, Any]:
    hasher = runtime.hasher
    admin_secret = new_secret()
    if not await registry.admin_exists(session, ADMIN_CLIENT_ID):
        await registry.create_admin_client(
            session, hasher, name="Demo health department", client_id=ADMIN_CLIENT_ID, secret=admin_secret
        )
    else:
        await registry.reset_admin_secret(session, hasher, ADMIN_CLIENT_ID, admin_secret)

    facilities: list[dict[str, Any]] = []
    for code, name, province in FACILITIES:
        if await registry.get_facility(session, code) is None:
            _, secret = await registry.register_facility(
                session, hasher, FacilityCreate(name=name, province_code=province, facility_code=code)
            )
        else:
            secret = await registry.reset_facility_secret(session, hasher, code)
        facilities.append({"facility_code": code, "name": name, "client_secret": secret, "prescribers": []})

    for license_no, full_name, codes, controlled in PRESCRIBERS:
        key = ECKey.generate_key("P-256", private=True)
        public = key.as_dict(private=False)
        existing = await registry.prescriber_by_license(session, license_no)
        if existing is None:
            prescriber = await registry.register_prescriber(
                session,
                PrescriberCreate(
                    full_name=full_name,
                    license_no=license_no,
                    facility_codes=codes,
                    public_jwk=public,
                    controlled_allowed=controlled,
                ),
            )
        else:
            prescriber = await registry.replace_prescriber_key(session, existing.prescriber_id, public)
        # The national protocol's sign-in (dang-nhap-bac-si) needs a password of its own.
        password = new_secret()
        await registry.set_prescriber_password(session, hasher, prescriber.prescriber_id, password)
        entry = {
            "prescriber_id": prescriber.prescriber_id,
            "full_name": full_name,
            "license_no": license_no,
            "private_jwk": key.as_dict(private=True),
            "controlled_allowed": controlled,
            "password": password,
        }
        for facility in facilities:
            if facility["facility_code"] in codes:
                facility["prescribers"].append(entry)

    pharmacies: list[dict[str, Any]] = []
    for code, name, kind, province, address, lat, lon, controlled in PHARMACIES:
        if await registry.get_pharmacy(session, code) is None:
            _, secret = await registry.register_pharmacy(
                session,
                hasher,
                PharmacyCreate(
                    name=name,
                    kind=kind,
                    province_code=province,
                    address=address,
                    latitude=lat,
                    longitude=lon,
                    controlled_licence=controlled,
                ),
                connection_code=code,
            )
        else:
            _, secret = await registry.rotate_pharmacy_secret(session, hasher, code)
        pharmacies.append(
            {
                "connection_code": code,
                "name": name,
                "client_secret": secret,
                "controlled_licence": controlled,
                "province_code": province,
            }
        )

    await catalogue.import_drugs(session, read_catalogue_csv(shipped_catalogue()))
    await _publish_demo_prices(session)
    return {
        "admin": {"client_id": ADMIN_CLIENT_ID, "client_secret": admin_secret},
        "facilities": facilities,
        "pharmacies": pharmacies,
    }


async def _publish_demo_prices(session: AsyncSession) -> None:
    """List most catalogue products at each demo pharmacy, around the declared price."""
    rng = random.Random(2026)
    drugs = [row for _, row in read_catalogue_csv(shipped_catalogue())]
    for code, *_rest, controlled in PHARMACIES:
        pharmacy = await registry.get_pharmacy(session, code)
        assert pharmacy is not None
        items = []
        for row in drugs:
            if row["category"] in CONTROLLED_CATEGORIES and not controlled:
                continue
            if rng.random() < 0.25:  # no outlet stocks everything
                continue
            declared = int(row["declared_price"]) if row["declared_price"] else rng.randint(50, 900) * 1000
            price = max(100, round(declared * rng.uniform(0.85, 1.15) / 100) * 100)
            items.append({"registration_no": row["registration_no"], "price": price, "unit": row["unit"]})
        await prices.publish_prices(session, pharmacy, items)


async def load_demo(runtime: Runtime) -> Path:
    """Load demo data once; later runs keep it and the credentials file as they are."""
    path = credentials_path(runtime.settings)
    async with runtime.database.sessionmaker() as session, session.begin():
        if path.exists() and await registry.admin_exists(session, ADMIN_CLIENT_ID):
            return path
        # Either first run, or the file was lost: secrets are stored hashed, so issue new ones.
        credentials = await _upsert(session, runtime)
    # Synthetic outlets across the provinces so the public portal has something to compare.
    await seed_prices(runtime, outlets=DEMO_SEEDED_OUTLETS, rows=DEMO_SEEDED_LISTINGS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(credentials, ensure_ascii=False, indent=2))
    path.chmod(0o600)
    return path


def load_demo_sync(settings: Settings) -> Path:
    async def run() -> Path:
        runtime = Runtime.build(settings)
        try:
            return await load_demo(runtime)
        finally:
            await runtime.database.dispose()

    return asyncio.run(run())


# ---- a realistic signed prescription -----------------------------------------------------


@dataclass(frozen=True)
class DemoPrescription:
    facility_code: str
    prescriber_id: str
    jws: str
    payload: dict[str, Any]


def sign_payload(payload: dict[str, Any], private_jwk: dict[str, Any], kid: str) -> str:
    key = ECKey.import_key(private_jwk)
    body = json.dumps(payload, ensure_ascii=False).encode()
    return jws.serialize_compact({"alg": "ES256", "kid": kid}, body, key, algorithms=["ES256"])


DEMO_ITEMS: dict[str, list[dict[str, Any]]] = {
    "c": [
        {
            "active_ingredient": "amoxicillin",
            "strength": "500mg",
            "dosage_form": "viên nang cứng",
            "quantity": 21,
            "unit": "viên",
            "instructions": "Uống 1 viên x 3 lần/ngày sau ăn",
            "days_supply": 7,
        },
        {
            "active_ingredient": "paracetamol",
            "strength": "500mg",
            "dosage_form": "viên nén",
            "quantity": 10,
            "unit": "viên",
            "instructions": "Uống 1 viên khi sốt trên 38.5°C, cách nhau ít nhất 6 giờ",
            "days_supply": 5,
        },
    ],
    "h": [
        {
            "active_ingredient": "diazepam",
            "strength": "5mg",
            "dosage_form": "viên nén",
            "quantity": 7,
            "unit": "viên",
            "instructions": "Uống 1 viên trước khi ngủ",
            "days_supply": 7,
        },
    ],
    "n": [
        {
            "active_ingredient": "morphine",
            "strength": "10mg/ml",
            "dosage_form": "dung dịch tiêm",
            "quantity": 10,
            "unit": "ống",
            "instructions": "Tiêm dưới da 1 ống khi đau, tối đa 2 ống/ngày",
            "days_supply": 5,
        },
    ],
}
DEMO_DIAGNOSES = {
    "c": [{"icd10": "J02.9", "text": "Viêm họng cấp"}],
    "h": [{"icd10": "F41.1", "text": "Rối loạn lo âu lan toả"}],
    "n": [{"icd10": "C34.9", "text": "U ác tính phế quản và phổi"}],
}


def demo_prescription(
    credentials: dict[str, Any], kind: str = "c", now: datetime | None = None
) -> DemoPrescription:
    facility = credentials["facilities"][0]
    prescribers = facility["prescribers"]
    prescriber = next((p for p in prescribers if p["controlled_allowed"] or kind not in "nh"), prescribers[0])
    issued = (now or datetime.now(UTC)).astimezone().replace(microsecond=0)
    payload: dict[str, Any] = {
        "kind": kind,
        "facility_code": facility["facility_code"],
        "issued_at": issued.isoformat(),
        "patient": {
            "full_name": "Nguyễn Văn An",
            "date_of_birth": (date.today() - timedelta(days=365 * 42)).isoformat(),
            "gender": "male",
            "national_id": "001086012345",
            "insurance_no": "DN4010112345678",
            "phone": "0912345678",
            "address": "18 Phố Huế, Hai Bà Trưng, Hà Nội",
        },
        "diagnoses": DEMO_DIAGNOSES[kind],
        "items": DEMO_ITEMS[kind],
        "notes": "Tái khám nếu sốt kéo dài quá 3 ngày",
    }
    return DemoPrescription(
        facility["facility_code"],
        prescriber["prescriber_id"],
        sign_payload(payload, prescriber["private_jwk"], prescriber["prescriber_id"]),
        payload,
    )
