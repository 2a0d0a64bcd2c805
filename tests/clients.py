"""Clients of the real app: browsers with their own cookie jar and address, and pharmacy programs."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI

from tests.factories import Facility, Pharmacy, World, dispense_body

if TYPE_CHECKING:
    from kit.settings import Settings
    from tests.conftest import Harness

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
META_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')
IDEMPOTENCY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def new_address() -> str:
    """An address of its own: each browser is a device of its own on the network."""
    return f"10.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


class Browser:
    """One browser: a cookie jar and an address, talking to the app over ASGI."""

    def __init__(self, app: FastAPI, address: str | None = None) -> None:
        self.app = app
        self.address = address or new_address()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(self.address, 50000)), base_url="http://erx.test"
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.client.aclose()

    @property
    def session_cookie(self) -> str | None:
        return self.client.cookies.get("erx_session")

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(url, **kwargs)
        found = (
            META_TOKEN.search(response.text)
            if response.headers.get("content-type", "").startswith("text/html")
            else None
        )
        if found:
            self.csrf = found.group(1)
        return response

    async def form_token(self, url: str) -> str:
        page = await self.get(url)
        if page.status_code == 303:
            # Already signed in: the form's double-submit cookie from before still holds.
            return self.client.cookies.get("erx_form") or ""
        found = FORM_TOKEN.search(page.text)
        assert found, page.text
        return found.group(1)

    async def post_form(self, url: str, data: dict[str, Any], *, with_csrf: bool = True) -> httpx.Response:
        body = dict(data)
        if with_csrf and "csrf_token" not in body:
            body["csrf_token"] = self.csrf
        return await self.client.post(url, data=body)

    async def post_json(
        self, url: str, body: Any, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {"X-CSRF-Token": self.csrf, **(headers or {})}
        return await self.client.post(url, json=body, headers=sent)

    # ---- signing in -------------------------------------------------------------------

    async def prescriber_sign_in(self, facility: Facility, secret: str | None = None) -> httpx.Response:
        token = await self.form_token("/console/prescriber/sign-in")
        response = await self.client.post(
            "/console/prescriber/sign-in",
            data={
                "facility_code": facility.facility_code,
                "secret": secret if secret is not None else facility.client_secret,
                "csrf_token": token,
            },
        )
        if response.status_code == 303:
            await self.get("/console/prescriber/prescribers")
        return response

    async def as_prescriber(self, w: World, prescriber_id: str | None = None) -> None:
        signed = await self.prescriber_sign_in(w.facility)
        assert signed.status_code == 303, signed.text
        chosen = await self.post_form(
            "/console/prescriber/prescribers", {"prescriber_id": prescriber_id or w.prescriber.prescriber_id}
        )
        assert chosen.status_code == 303, chosen.text
        desk = await self.get("/console/prescriber")
        assert desk.status_code == 200

    async def pharmacist_sign_in(self, pharmacy: Pharmacy, secret: str | None = None) -> httpx.Response:
        token = await self.form_token("/console/pharmacy/sign-in")
        response = await self.client.post(
            "/console/pharmacy/sign-in",
            data={
                "connection_code": pharmacy.connection_code,
                "secret": secret if secret is not None else pharmacy.client_secret,
                "csrf_token": token,
            },
        )
        if response.status_code == 303:
            await self.get("/console/pharmacy")
        return response

    async def as_pharmacist(self, pharmacy: Pharmacy) -> None:
        signed = await self.pharmacist_sign_in(pharmacy)
        assert signed.status_code == 303, signed.text

    def access_key(self, code: str) -> str:
        """The key printed on the patient's paper of `code` (derived by this app's national key)."""
        from eprescribe.prescriptions import service as prescriptions

        canonical = prescriptions.canonical_code(code) or code
        return prescriptions.patient_access_key(self.app.state.runtime.keyring, canonical)

    async def open_rx(self, code: str, date_of_birth: str, key: str | None = None) -> httpx.Response:
        """Open the patient page with the paper's key (or the `key` given) and a date of birth."""
        token = await self.form_token(f"/rx/{code}")
        return await self.client.post(
            f"/rx/{code}",
            data={
                "date_of_birth": date_of_birth,
                "access_key": self.access_key(code) if key is None else key,
                "csrf_token": token,
            },
        )


@dataclass
class Browsers:
    """Opens browsers on one app and closes them all at the end of the test."""

    app: FastAPI
    opened: list[Browser]

    def __call__(self, address: str | None = None) -> Browser:
        browser = Browser(self.app, address)
        self.opened.append(browser)
        return browser


def loopback_address() -> str:
    """A loopback address of its own: a pharmacy's requests come from where it sits."""
    return f"127.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def client_from(app: FastAPI, address: str | None = None) -> httpx.AsyncClient:
    """An ASGI client whose requests come from `address` (what erx.runtime.client_address sees)."""
    transport = httpx.ASGITransport(app=app, client=(address or loopback_address(), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://erx.test")


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


# ---- the command line -----------------------------------------------------------------------

ERX = str(Path(sys.executable).parent / "erx")


def erx_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `erx` command as an operator would, on these settings' database and data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERX_") and k != "DATABASE_URL"}
    env |= {"ERX_ENVIRONMENT": "test", "ERX_DATA_DIR": str(settings.data_dir), "COLUMNS": "200"}
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    if settings.identity_key is not None:
        env["ERX_IDENTITY_KEY"] = settings.identity_key.get_secret_value()
    return subprocess.run([ERX, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


async def erx(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `erx` command against this harness's database (off the event loop)."""
    return await asyncio.to_thread(erx_command, harness.settings, *args)
