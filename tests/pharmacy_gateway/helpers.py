"""Builders for gateway tests: pharmacies calling from their own address, dispense bodies, a live server."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from erx.audit import AccessLogEntry
from tests.conftest import Harness
from tests.factories import Api, Pharmacy, World

PHARMACIST = {"full_name": "DS. Lê Văn Cường", "license_no": "012345/HNO-CCHND"}


def new_address() -> str:
    """A loopback address of its own, so one test's failures never throttle another's."""
    return f"127.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def client_from(app: FastAPI, address: str | None = None) -> httpx.AsyncClient:
    """An ASGI client whose requests come from `address` (what erx.runtime.client_address sees)."""
    transport = httpx.ASGITransport(app=app, client=(address or new_address(), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://erx.test")


def line(line_no: int, registration_no: str, quantity: int, **extra: Any) -> dict[str, Any]:
    return {"line_no": line_no, "registration_no": registration_no, "quantity": quantity, **extra}


def dispense_body(*items: dict[str, Any], pharmacist: dict[str, str] | None = None) -> dict[str, Any]:
    return {"pharmacist": pharmacist or PHARMACIST, "items": list(items)}


class Gateway:
    """One pharmacy's view of the gateway, calling from its own address."""

    def __init__(self, client: httpx.AsyncClient, pharmacy: Pharmacy) -> None:
        self.client = client
        self.pharmacy = pharmacy

    @property
    def headers(self) -> dict[str, str]:
        return self.pharmacy.headers

    async def lookup(self, code: str) -> httpx.Response:
        # Quoted as a client must: scanned text may carry spaces, tabs or a newline.
        return await self.client.get(
            f"/gateway/v1/prescriptions/{quote(code, safe='')}", headers=self.headers
        )

    async def dispense(
        self, code: str, *items: dict[str, Any], key: str | None = None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = dict(self.headers)
        headers["Idempotency-Key"] = key or secrets.token_hex(8)
        return await self.client.post(
            f"/gateway/v1/prescriptions/{code}/dispenses",
            json=body if body is not None else dispense_body(*items),
            headers=headers,
        )

    async def void(self, dispense_id: str, reason: str = "Nhập sai số lượng") -> httpx.Response:
        return await self.client.post(
            f"/gateway/v1/dispenses/{dispense_id}/void", json={"reason": reason}, headers=self.headers
        )

    async def history(self, **params: Any) -> httpx.Response:
        return await self.client.get("/gateway/v1/dispenses", params=params, headers=self.headers)

    async def token(self, secret: str | None = None) -> httpx.Response:
        return await self.client.post(
            "/gateway/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.pharmacy.connection_code,
                "client_secret": self.pharmacy.client_secret if secret is None else secret,
            },
        )


async def gateway_for(harness: Harness, *, controlled: bool = False, address: str | None = None) -> Gateway:
    pharmacy = await harness.api.pharmacy(controlled=controlled)
    assert pharmacy.token, "the gateway token endpoint must answer a fresh pharmacy"
    return Gateway(client_from(harness.app, address), pharmacy)


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
