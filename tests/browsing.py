"""What the browser tests share: a live system of their own, the health department over its API,
and small helpers for pages (screenshots, a fake camera, sideways overflow, QR codes on screen)."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import zxingcpp
from joserfc.jwk import ECKey
from PIL import Image

from eprescribe.registry import service as registry
from erx.migrate import upgrade
from kit.runtime import Runtime
from kit.settings import Settings
from tests.conftest import make_settings
from tests.factories import sign
from tests.live import ARTIFACTS, live_server

ADMIN_ID = "admin-browser"
ADMIN_SECRET = "browser-test-admin-secret-0123456789"


@dataclass
class Live:
    """A running system: its address and its settings (the test may look into its database)."""

    base: str
    settings: Settings

    def sql(self, statement: str) -> None:
        """Run one statement on the live SQLite database (to end sessions, say)."""
        with sqlite3.connect(self.settings.data_dir / "erx.sqlite3") as connection:
            connection.execute(statement)


@contextmanager
def live_system(
    directory: Path, prepare: Callable[[Runtime], Awaitable[None]] | None = None, **overrides: Any
) -> Iterator[Live]:
    """Serve the whole system on its own SQLite database, with one admin client (and `prepare`)."""
    settings = make_settings(directory, None, **overrides)
    upgrade(settings)

    async def setup() -> None:
        runtime = Runtime.build(settings)
        try:
            async with runtime.database.sessionmaker() as session, session.begin():
                await registry.create_admin_client(
                    session, runtime.hasher, name="browser test", client_id=ADMIN_ID, secret=ADMIN_SECRET
                )
            if prepare is not None:
                await prepare(runtime)
        finally:
            await runtime.database.dispose()

    asyncio.run(setup())
    with live_server(settings) as base:
        yield Live(base, settings)


@dataclass
class Department:
    """The health department and the clients it registers, over the real API."""

    http: httpx.Client

    def token(self, path: str, client_id: str, secret: str) -> str:
        r = self.http.post(
            path, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token('/api/v1/auth/token', ADMIN_ID, ADMIN_SECRET)}"}

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = self.http.post(path, json=body, headers=headers or self.admin)
        assert r.status_code in (200, 201), r.text
        result: dict[str, Any] = r.json()
        return result

    def drug(
        self,
        registration_no: str,
        name: str,
        ingredient: str,
        strength: str,
        form: str,
        unit: str,
        category: str = "normal",
    ) -> None:
        self.post(
            "/api/v1/drugs",
            {
                "registration_no": registration_no,
                "name": name,
                "active_ingredient": ingredient,
                "strength": strength,
                "dosage_form": form,
                "unit": unit,
                "category": category,
            },
        )

    def pharmacy(self, name: str, province: str, *, controlled: bool = False) -> tuple[str, str]:
        created = self.post(
            "/api/v1/pharmacies",
            {
                "name": name,
                "kind": "pharmacy",
                "province_code": province,
                "address": f"{name}, Hà Nội",
                "controlled_licence": controlled,
            },
        )
        return created["connection_code"], created["client_secret"]

    def prices(self, pharmacy: tuple[str, str], items: list[tuple[str, int, str]]) -> None:
        token = self.token("/gateway/v1/auth/token", *pharmacy)
        r = self.http.put(
            "/gateway/v1/prices",
            json={"items": [{"registration_no": n, "price": p, "unit": u} for n, p, u in items]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text

    def facility(self, name: str, province: str = "01") -> dict[str, Any]:
        return self.post("/api/v1/facilities", {"name": name, "province_code": province})

    def prescriber(self, facility_code: str, name: str, license_no: str | None = None) -> tuple[str, ECKey]:
        """Register a prescriber with a key made here (a hospital system's doctor, not a browser's)."""
        key = ECKey.generate_key("P-256", private=True)
        created = self.post(
            "/api/v1/prescribers",
            {
                "full_name": name,
                "license_no": license_no or f"{secrets.randbelow(10**6):06d}/HNO-CCHN",
                "facility_codes": [facility_code],
                "public_jwk": key.as_dict(private=False),
                "controlled_allowed": True,
            },
        )
        return created["prescriber_id"], key

    def prescribe(
        self,
        facility: dict[str, Any],
        prescriber: tuple[str, ECKey],
        patient: dict[str, Any],
        items: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Sign and submit a prescription as a hospital information system does."""
        payload = {
            "kind": "c",
            "facility_code": facility["facility_code"],
            "issued_at": datetime.now(UTC).astimezone().replace(microsecond=0).isoformat(),
            "patient": patient,
            "diagnoses": [{"icd10": "J02.9", "text": "Viêm họng cấp"}],
            "items": items,
        }
        token = self.token("/api/v1/auth/token", facility["facility_code"], facility["client_secret"])
        jws = sign(payload, prescriber[1], prescriber[0])
        return self.post("/api/v1/prescriptions", {"jws": jws}, {"Authorization": f"Bearer {token}"})


def line(ingredient: str, strength: str, form: str, quantity: int, unit: str = "viên") -> dict[str, Any]:
    return {
        "active_ingredient": ingredient,
        "strength": strength,
        "dosage_form": form,
        "quantity": quantity,
        "unit": unit,
        "instructions": "Uống 1 viên x 3 lần/ngày",
        "days_supply": 7,
    }


def shot(page: Any, name: str, **kwargs: Any) -> Path:
    """A full-page screenshot in tests/artifacts/ (look at it: it is what a person sees)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, **kwargs)
    return path


def sideways_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing scrolls sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def qr_texts(png: Path, scale: float = 1.0) -> list[str]:
    """The QR codes zxing reads in a screenshot, resampled (0.75 of a 96 dpi shot is 72 dpi)."""
    image = Image.open(png).convert("L")
    if scale != 1.0:
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
        )
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [str(code.text) for code in found]


def fake_camera(png: bytes, path: Path) -> Path:
    """A Y4M video (what Chromium's fake capture device plays) of the QR on a white card."""
    width, height = 640, 480
    qr = Image.open(io.BytesIO(png)).convert("L")
    side = min(440, height - 20)
    frame = Image.new("L", (width, height), 235)
    frame.paste(
        qr.resize((side, side), Image.Resampling.NEAREST), ((width - side) // 2, (height - side) // 2)
    )
    luma = frame.tobytes()
    # 4:2:0 chroma at neutral grey: a black and white picture.
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            out.write(b"FRAME\n" + luma + chroma + chroma)
    return path


def enrol_in_browser(page: Any, base: str) -> dict[str, Any]:
    """Create the browser's signing key on the enrolment page and return its public JWK."""
    page.goto(f"{base}/console/prescriber/enrol")
    page.click("#create-key")
    page.wait_for_selector("#new-key:not([hidden])")
    jwk: dict[str, Any] = json.loads(page.input_value("#public-jwk"))
    return jwk
