"""Browser-like clients of the consoles: their own cookie jar, their own address, signed in through forms."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import ENGINES, Harness, _settings_for
from tests.factories import Facility, Pharmacy, World

TUNED = {
    "throttle_free_failures": 2,
    "throttle_block_failures": 3,
    "throttle_address_factor": 4,
    "patient_view_free_failures": 1,
    "patient_view_block_failures": 3,
}

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
META_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')
IDEMPOTENCY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def new_address() -> str:
    """An address of its own, so one test's failures never throttle another test's requests."""
    return f"10.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


class Browser:
    """One browser: a cookie jar and an address, talking to the app over ASGI."""

    def __init__(self, app: FastAPI, address: str | None = None) -> None:
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

    async def open_rx(self, code: str, date_of_birth: str) -> httpx.Response:
        token = await self.form_token(f"/rx/{code}")
        return await self.client.post(
            f"/rx/{code}", data={"date_of_birth": date_of_birth, "csrf_token": token}
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


@pytest.fixture
async def browsers(harness: Harness) -> AsyncIterator[Browsers]:
    found = Browsers(harness.app, [])
    yield found
    for browser in found.opened:
        await browser.close()


@pytest.fixture(scope="session", params=ENGINES)
async def tuned(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """Both engines again, with tight limits for wrong secrets and wrong dates of birth."""
    engine = str(request.param)
    cluster = request.getfixturevalue("pg_cluster") if engine == "postgresql" else None
    settings = await _settings_for(
        engine, "erx_consoles_tuned", tmp_path_factory.mktemp(f"consoles-{engine}"), cluster, **TUNED
    )
    h = await Harness(settings).start()
    yield h
    await h.close()


@pytest.fixture
async def tuned_browsers(tuned: Harness) -> AsyncIterator[Browsers]:
    found = Browsers(tuned.app, [])
    yield found
    for browser in found.opened:
        await browser.close()
