"""Builders for price-portal tests: outlets with coordinates, products, published price lists."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from eprescribe import service as registry
from price_portal import service as portal
from tests.conftest import Harness
from tests.factories import Api, Product, rand


def token() -> str:
    """A word no other test's data contains, so searches see only this test's rows."""
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
        assert pharmacy is not None and pharmacy.id is not None
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
            await portal.publish_prices(session, pharmacy, items, now=at)

    async def prices(self, **params: Any) -> dict[str, Any]:
        r = await self.client.get("/portal/api/v1/prices", params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def admin(self, path: str) -> httpx.Response:
        return await self.client.post(path, headers=await self.api.admin_headers())


@pytest.fixture
def portal_api(harness: Harness) -> Portal:
    return Portal(harness)
