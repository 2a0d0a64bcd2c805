"""The one module of test-data builders; they go through the real HTTP API wherever it reaches."""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy import func, select
from sqlmodel import col

from eprescribe.prescriptions.models import Prescription
from eprescribe.registry import service as registry
from kit.audit import AccessLogEntry
from pharmacy_gateway.prices import service as price_service

if TYPE_CHECKING:
    from tests.conftest import Harness

ALNUM = string.digits + string.ascii_uppercase


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).astimezone().replace(microsecond=0).isoformat()


def sign(payload: dict[str, Any] | bytes, key: ECKey, kid: str, **header: Any) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return jws.serialize_compact({"alg": "ES256", "kid": kid, **header}, body, key, algorithms=["ES256"])


@dataclass
class Prescriber:
    prescriber_id: str
    key: ECKey
    facility_codes: list[str]
    controlled_allowed: bool

    def sign(self, payload: dict[str, Any]) -> str:
        return sign(payload, self.key, self.prescriber_id)


@dataclass
class Facility:
    facility_code: str
    client_secret: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Pharmacy:
    connection_code: str
    client_secret: str
    controlled_licence: bool
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Product:
    registration_no: str
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    unit: str
    category: str
    declared_price: int | None

    def line(
        self, *, quantity: int = 10, days_supply: int = 5, with_registration: bool = False
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "active_ingredient": self.active_ingredient,
            "strength": self.strength,
            "dosage_form": self.dosage_form,
            "quantity": quantity,
            "unit": self.unit,
            "instructions": "Uống 1 viên x 2 lần/ngày",
            "days_supply": days_supply,
        }
        if with_registration:
            item["registration_no"] = self.registration_no
        return item


@dataclass
class World:
    """A facility with prescribers, and products of every category, fresh for one test."""

    facility: Facility
    prescriber: Prescriber
    controlled_prescriber: Prescriber
    products: dict[str, Product] = field(default_factory=dict)


class Api:
    """The test's view of the system: admin, facilities and pharmacies over HTTP."""

    def __init__(self, client: httpx.AsyncClient, admin_id: str, admin_secret: str) -> None:
        self.client = client
        self.admin_id = admin_id
        self.admin_secret = admin_secret
        self._admin_token: str | None = None

    async def token(self, path: str, client_id: str, secret: str) -> httpx.Response:
        return await self.client.post(
            path, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        )

    async def admin_headers(self) -> dict[str, str]:
        if self._admin_token is None:
            r = await self.token("/api/v1/auth/token", self.admin_id, self.admin_secret)
            assert r.status_code == 200, r.text
            self._admin_token = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._admin_token}"}

    async def facility(self, province: str = "01") -> Facility:
        r = await self.client.post(
            "/api/v1/facilities",
            json={"name": f"Bệnh viện {rand(4)}", "province_code": province},
            headers=await self.admin_headers(),
        )
        assert r.status_code == 201, r.text
        f = Facility(r.json()["facility_code"], r.json()["client_secret"])
        t = await self.token("/api/v1/auth/token", f.facility_code, f.client_secret)
        assert t.status_code == 200, t.text
        f.token = t.json()["access_token"]
        return f

    async def prescriber(self, facility_codes: list[str], *, controlled: bool = False) -> Prescriber:
        key = ECKey.generate_key("P-256", private=True)
        r = await self.client.post(
            "/api/v1/prescribers",
            json={
                "full_name": f"BS. Nguyễn {rand(4)}",
                "license_no": f"{rand(6, string.digits)}/HNO-CCHN",
                "facility_codes": facility_codes,
                "public_jwk": key.as_dict(private=False),
                "controlled_allowed": controlled,
            },
            headers=await self.admin_headers(),
        )
        assert r.status_code == 201, r.text
        return Prescriber(r.json()["prescriber_id"], key, facility_codes, controlled)

    async def pharmacy(
        self, *, controlled: bool = False, province: str = "01", kind: str = "pharmacy"
    ) -> Pharmacy:
        r = await self.client.post(
            "/api/v1/pharmacies",
            json={
                "name": f"Nhà thuốc {rand(4)}",
                "kind": kind,
                "province_code": province,
                "address": f"{rand(2, string.digits)} Giải Phóng, Hà Nội",
                "controlled_licence": controlled,
            },
            headers=await self.admin_headers(),
        )
        assert r.status_code == 201, r.text
        p = Pharmacy(r.json()["connection_code"], r.json()["client_secret"], controlled)
        t = await self.token("/gateway/v1/auth/token", p.connection_code, p.client_secret)
        if t.status_code == 200:
            p.token = t.json()["access_token"]
        return p

    async def product(
        self,
        category: str = "normal",
        *,
        ingredient: str | None = None,
        strength: str = "500mg",
        dosage_form: str = "viên nén",
        unit: str = "viên",
        price: int | None = 1000,
        name: str | None = None,
    ) -> Product:
        ingredient = ingredient or f"testamol-{rand(6).lower()}"
        body: dict[str, Any] = {
            "registration_no": f"VD-{rand(5, string.digits)}-{rand(2, string.digits)}-{rand(3)}",
            "name": name or f"{ingredient.title()} {strength}",
            "active_ingredient": ingredient,
            "strength": strength,
            "dosage_form": dosage_form,
            "unit": unit,
            "category": category,
        }
        if price is not None:
            body["declared_price"] = price
        r = await self.client.post("/api/v1/drugs", json=body, headers=await self.admin_headers())
        assert r.status_code == 201, r.text
        return Product(
            body["registration_no"], body["name"], ingredient, strength, dosage_form, unit, category, price
        )

    async def world(self) -> World:
        facility = await self.facility()
        prescriber = await self.prescriber([facility.facility_code])
        controlled = await self.prescriber([facility.facility_code], controlled=True)
        w = World(facility, prescriber, controlled)
        for category in ("normal", "narcotic", "psychotropic", "precursor", "traditional", "supplement"):
            w.products[category] = await self.product(category)
        return w

    async def submit(self, facility: Facility, jws_text: str, *, key: str | None = None) -> httpx.Response:
        headers = dict(facility.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post("/api/v1/prescriptions", json={"jws": jws_text}, headers=headers)

    async def prescribe(self, w: World, **kwargs: Any) -> dict[str, Any]:
        """Submit a valid prescription and return the created answer."""
        prescriber = kwargs.pop("prescriber", None) or (
            w.controlled_prescriber if kwargs.get("kind", "c") in "nh" else w.prescriber
        )
        payload = payload_for(w, **kwargs)
        r = await self.submit(w.facility, prescriber.sign(payload))
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


KIND_PRODUCT = {"c": "normal", "n": "narcotic", "h": "psychotropic", "y": "traditional", "t": "traditional"}


def payload_for(
    w: World,
    *,
    kind: str = "c",
    items: list[dict[str, Any]] | None = None,
    patient: dict[str, Any] | None = None,
    diagnoses: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    product = w.products[KIND_PRODUCT[kind]]
    return {
        "kind": kind,
        "facility_code": w.facility.facility_code,
        "issued_at": now_iso(),
        "patient": patient
        or {
            "full_name": "Trần Thị Bình",
            "date_of_birth": "1980-03-15",
            "gender": "female",
            "national_id": "001180012345",
            "insurance_no": "DN4010112345678",
        },
        "diagnoses": diagnoses or [{"icd10": "J02.9", "text": "Viêm họng cấp"}],
        "items": items or [product.line(quantity=10, days_supply=5)],
        **extra,
    }


def child_birthdate(months: int) -> str:
    today = date.today()
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, min(today.day, 28)).isoformat()


# ---- dispensing ---------------------------------------------------------------------------

PHARMACIST = {"full_name": "DS. Lê Văn Cường", "license_no": "012345/HNO-CCHND"}


def line(line_no: int, registration_no: str, quantity: int, **extra: Any) -> dict[str, Any]:
    return {"line_no": line_no, "registration_no": registration_no, "quantity": quantity, **extra}


def dispense_body(*items: dict[str, Any], pharmacist: dict[str, str] | None = None) -> dict[str, Any]:
    return {"pharmacist": pharmacist or PHARMACIST, "items": list(items)}


async def facility_view(api: Api, w: World, code: str) -> dict[str, Any]:
    r = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def access_entries(harness: Harness, code: str) -> list[AccessLogEntry]:
    async with harness.runtime.database.sessionmaker() as session:
        result = await session.execute(
            select(AccessLogEntry)
            .where(AccessLogEntry.prescription_code == code)  # type: ignore[arg-type]
            .order_by(AccessLogEntry.id)  # type: ignore[arg-type]
        )
        return list(result.scalars())


async def prescribe(api: Api, w: World, **kwargs: Any) -> str:
    """Submit a fresh prescription and return its code (a unique note keeps payloads distinct)."""
    kwargs.setdefault("notes", f"gateway test {secrets.token_hex(6)}")
    body = await api.prescribe(w, **kwargs)
    code: str = body["code"]
    return code


# ---- listed prices --------------------------------------------------------------------------


def token() -> str:
    """A word no other product of the test contains, so a search finds exactly the ones named by it."""
    return "zq" + rand(6, string.ascii_lowercase + string.digits)


@dataclass
class Outlet:
    id: int
    connection_code: str
    token: str
    province_code: str
    kind: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Portal:
    """Admin, outlets and the public, all over HTTP against the real app."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.client: httpx.AsyncClient = harness.client
        self.api: Api = harness.api

    async def outlet(
        self,
        *,
        province: str = "01",
        kind: str = "pharmacy",
        controlled: bool = False,
        latitude: float | None = None,
        longitude: float | None = None,
        name: str | None = None,
    ) -> Outlet:
        body: dict[str, Any] = {
            "name": name or f"Nhà thuốc {rand(5)}",
            "kind": kind,
            "province_code": province,
            "address": f"{secrets.randbelow(300) + 1} Nguyễn Trãi",
            "controlled_licence": controlled,
        }
        if latitude is not None:
            body |= {"latitude": latitude, "longitude": longitude}
        r = await self.client.post("/api/v1/pharmacies", json=body, headers=await self.api.admin_headers())
        assert r.status_code == 201, r.text
        code, secret = r.json()["connection_code"], r.json()["client_secret"]
        t = await self.api.token("/gateway/v1/auth/token", code, secret)
        assert t.status_code == 200, t.text
        async with self.harness.runtime.database.sessionmaker() as session:
            pharmacy = await registry.get_pharmacy(session, code)
        assert pharmacy is not None
        return Outlet(pharmacy.id, code, t.json()["access_token"], province, kind)

    async def product(self, **kwargs: Any) -> Product:
        return await self.api.product(**kwargs)

    async def publish(self, outlet: Outlet, *prices: tuple[Product, int]) -> httpx.Response:
        items = [
            {"registration_no": p.registration_no, "price": price, "unit": p.unit} for p, price in prices
        ]
        return await self.client.put("/gateway/v1/prices", json={"items": items}, headers=outlet.headers)

    async def listed(self, outlet: Outlet, *prices: tuple[Product, int]) -> None:
        r = await self.publish(outlet, *prices)
        assert r.status_code == 200, r.text

    async def publish_at(self, outlet: Outlet, at: datetime, *prices: tuple[Product, int]) -> None:
        """Publish through the real service as if at another instant (for history across days)."""
        items = [
            {"registration_no": p.registration_no, "price": price, "unit": p.unit} for p, price in prices
        ]
        async with self.harness.runtime.database.sessionmaker() as session, session.begin():
            pharmacy = await registry.get_pharmacy(session, outlet.connection_code)
            assert pharmacy is not None
            await price_service.publish_prices(session, pharmacy, items, now=at)

    async def prices(self, **params: Any) -> dict[str, Any]:
        r = await self.client.get("/portal/api/v1/prices", params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def admin(self, path: str) -> httpx.Response:
        return await self.client.post(path, headers=await self.api.admin_headers())


# ---- reading answers ------------------------------------------------------------------------


def rejected_at(r: Any, *loc: Any) -> bool:
    """Whether the answer is a 422 naming this field (the end of an error's `loc`)."""
    return bool(r.status_code == 422 and any(tuple(e["loc"][-len(loc) :]) == loc for e in r.json()["errors"]))


async def stored_count(harness: Harness, facility_code: str) -> int:
    """How many prescriptions of this facility are stored."""
    async with harness.runtime.database.sessionmaker() as session:
        found = await session.execute(
            select(func.count())
            .select_from(Prescription)
            .where(col(Prescription.facility_code) == facility_code)
        )
        return int(found.scalar_one())
