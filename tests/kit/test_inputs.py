"""Hostile input is a clear 4xx on both engines and changes nothing: never a 500.

Unsafe text (NUL, control characters, bidirectional overrides, lone surrogates) in bodies,
paths, query strings and form fields; integers and dates beyond what the database holds;
strings longer than their column; deep nesting inside tokens and JWS; loose JSON in what is
signed; oversized images for the QR decoder; the catch-all for anything unexpected.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest

from kit.errors import BadRequest
from pharmacy_gateway.console.counter import decode_qr
from tests.conftest import Harness
from tests.factories import Api, World, payload_for, sign, stored_count

UNSAFE = {
    "nul": "Trần\u0000Bình",
    "escape": "Trần\u001b[31mBình",
    "rlo": "Trần \u202eBình",
    "isolate": "Trần \u2066Bình\u2069",
    "c1": "Trần\u0085Bình",
}
PROBLEM = "application/problem+json"


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    return body


class TestUnsafeText:
    @pytest.mark.parametrize("name", sorted(UNSAFE))
    async def test_refused_in_a_signed_patient_name(
        self, api: Api, world: World, harness: Harness, name: str
    ) -> None:
        patient = {"full_name": UNSAFE[name], "date_of_birth": "1980-03-15", "gender": "female"}
        r = await api.submit(world.facility, world.prescriber.sign(payload_for(world, patient=patient)))
        detail = _problem(r, 422)["detail"]
        assert detail.startswith("payload.patient") and "full_name" in detail
        assert await stored_count(harness, world.facility.facility_code) == 0

    @pytest.mark.parametrize("name", sorted(UNSAFE))
    async def test_refused_in_a_registry_body(self, api: Api, name: str) -> None:
        r = await api.client.post(
            "/api/v1/pharmacies",
            json={
                "name": UNSAFE[name],
                "kind": "pharmacy",
                "province_code": "01",
                "address": "1 Giải Phóng",
                "controlled_licence": False,
            },
            headers=await api.admin_headers(),
        )
        assert "name" in _problem(r, 422)["detail"]

    async def test_lone_surrogate_in_a_body_is_refused(self, api: Api) -> None:
        raw = b'{"name": "Nh\\ud800", "kind": "pharmacy", "province_code": "01", "address": "x", "controlled_licence": false}'
        r = await api.client.post(
            "/api/v1/pharmacies",
            content=raw,
            headers={**await api.admin_headers(), "content-type": "application/json"},
        )
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text

    @pytest.mark.parametrize("value", ["para%00cetamol", "%E2%80%AEabc", "%ED%A0%80", "%FF"])
    async def test_refused_in_a_query_string(self, api: Api, value: str) -> None:
        r = await api.client.get(f"/api/v1/drugs?q={value}")
        assert _problem(r, 422)["errors"][0]["loc"][0] == "query"
        r = await api.client.get(f"/portal/api/v1/prices?q={value}")
        _problem(r, 422)

    async def test_refused_in_a_path(self, api: Api, world: World) -> None:
        r = await api.client.get("/api/v1/prescriptions/01001%00AAAAAA-c", headers=world.facility.headers)
        assert _problem(r, 422)["errors"][0]["loc"] == ["path"]

    @pytest.mark.parametrize("path", ["/api/v1/auth/token", "/gateway/v1/auth/token"])
    async def test_refused_in_token_form_fields_per_rfc_6749(self, api: Api, path: str) -> None:
        r = await api.token(path, "01\u0000001", "secret")
        body = _problem(r, 400)
        assert body["error"] == "invalid_request" and body["error_description"]


class TestRanges:
    async def test_integers_beyond_the_database_in_paths_and_queries(self, api: Api) -> None:
        for url in (
            f"/portal/api/v1/outlets/{2**63}",
            f"/portal/api/v1/outlets/{2**31}",
            f"/api/v1/drugs?offset={2**63}",
            "/portal/api/v1/prices?limit=99999999999999999999",
        ):
            _problem(await api.client.get(url), 422)
        r = await api.client.get(f"/outlets/{2**63}")
        assert r.status_code == 404

    async def test_dates_at_the_ends_of_the_calendar(self, api: Api, world: World, harness: Harness) -> None:
        for born in ("0001-01-01", "9999-12-31"):
            patient = {"full_name": "Trần Thị Bình", "date_of_birth": born, "gender": "female"}
            r = await api.submit(world.facility, world.prescriber.sign(payload_for(world, patient=patient)))
            assert "date_of_birth" in json.dumps(_problem(r, 422)["errors"])
        r = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, follow_up_date="9999-12-31"))
        )
        _problem(r, 422)
        assert await stored_count(harness, world.facility.facility_code) == 0

    async def test_dispense_history_dates_at_the_ends(self, api: Api) -> None:
        pharmacy = await api.pharmacy()
        for query in (
            "from=9999-12-31",
            "to=9999-12-31",
            "from=0001-01-01",
            "to=9999-12-31T23:59:59%2B00:00",
        ):
            _problem(await api.client.get(f"/gateway/v1/dispenses?{query}", headers=pharmacy.headers), 422)

    async def test_money_beyond_bigint(self, api: Api) -> None:
        body = {
            "registration_no": "VD-99999-99",
            "name": "X",
            "active_ingredient": "x",
            "strength": "1mg",
            "dosage_form": "viên",
            "unit": "viên",
            "category": "normal",
            "declared_price": 2**70,
        }
        r = await api.client.post("/api/v1/drugs", json=body, headers=await api.admin_headers())
        _problem(r, 422)


class TestColumnFit:
    async def test_a_patient_name_longer_than_its_column_is_refused_on_both_engines(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        too_long = {"full_name": "Ă" * 201, "date_of_birth": "1980-03-15", "gender": "female"}
        r = await api.submit(world.facility, world.prescriber.sign(payload_for(world, patient=too_long)))
        assert "full_name" in json.dumps(_problem(r, 422)["errors"])
        assert await stored_count(harness, world.facility.facility_code) == 0
        fits = {**too_long, "full_name": "Ă" * 200}
        r = await api.submit(world.facility, world.prescriber.sign(payload_for(world, patient=fits)))
        assert r.status_code == 201, r.text

    async def test_a_pharmacist_and_a_prescriber_name_too_long(self, api: Api, world: World) -> None:
        r = await api.client.post(
            "/api/v1/prescribers",
            json={
                "full_name": "B" * 201,
                "license_no": "123456/HNO",
                "facility_codes": [world.facility.facility_code],
                "public_jwk": {},
            },
            headers=await api.admin_headers(),
        )
        _problem(r, 422)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


NESTED = b'{"a":' * 20_000 + b"1" + b"}" * 20_000


class TestDeepNesting:
    async def test_in_a_bearer_token_header_and_payload(self, api: Api) -> None:
        plain = _b64(b'{"alg":"ES256","kid":"x"}')
        for token in (
            f"{_b64(NESTED)}.e30.c2ln",
            f"{plain}.{_b64(NESTED)}.c2ln",
            f"{_b64(b'[' * 100_000)}.e30.c2ln",
        ):
            r = await api.client.get(
                "/api/v1/prescriptions/01001AAAAAAA-c", headers={"Authorization": f"Bearer {token}"}
            )
            _problem(r, 401)
            r = await api.client.get("/gateway/v1/dispenses", headers={"Authorization": f"Bearer {token}"})
            _problem(r, 401)

    async def test_in_a_jws_header_and_a_signed_payload(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        header = _b64(b'{"alg":"ES256","kid":"x","n":' + b"[" * 60_000 + b"]" * 60_000 + b"}")
        r = await api.submit(world.facility, f"{header}.e30.c2ln")
        _problem(r, 400)
        r = await api.submit(
            world.facility, sign(NESTED, world.prescriber.key, world.prescriber.prescriber_id)
        )
        # joserfc itself refuses to verify a payload this deep (400); either way a clean problem.
        assert r.status_code in (400, 422) and r.headers["content-type"].startswith(PROBLEM), r.text
        assert await stored_count(harness, world.facility.facility_code) == 0


class TestStrictSignedJson:
    async def _refused(self, api: Api, world: World, harness: Harness, body: bytes) -> dict[str, Any]:
        r = await api.submit(world.facility, sign(body, world.prescriber.key, world.prescriber.prescriber_id))
        problem = _problem(r, 422)
        assert await stored_count(harness, world.facility.facility_code) == 0
        return problem

    async def test_duplicate_keys(self, api: Api, world: World, harness: Harness) -> None:
        text = json.dumps(payload_for(world), ensure_ascii=False)
        twice = text[:-1] + ', "facility_code": "99999"}'
        assert "duplicate" in (await self._refused(api, world, harness, twice.encode()))["detail"]

    async def test_not_utf8(self, api: Api, world: World, harness: Harness) -> None:
        text = json.dumps(payload_for(world), ensure_ascii=False)
        assert "UTF-8" in (await self._refused(api, world, harness, text.encode("utf-16")))["detail"]

    async def test_issued_at_without_offset(self, api: Api, world: World, harness: Harness) -> None:
        payload = payload_for(world, issued_at="2026-11-22T09:30:00")
        await self._refused(api, world, harness, json.dumps(payload).encode())

    @pytest.mark.parametrize(
        ("field", "value"),
        [("quantity", "2"), ("quantity", True), ("days_supply", 5.5), ("days_supply", "5")],
    )
    async def test_no_coercion_in_items(
        self, api: Api, world: World, harness: Harness, field: str, value: Any
    ) -> None:
        item = {**world.products["normal"].line(quantity=2, days_supply=5), field: value}
        problem = await self._refused(
            api, world, harness, json.dumps(payload_for(world, items=[item])).encode()
        )
        assert field in json.dumps(problem["errors"])

    async def test_no_coercion_of_weight_or_dates(self, api: Api, world: World, harness: Harness) -> None:
        for patient in (
            {"full_name": "A", "date_of_birth": "1980-03-15", "gender": "female", "weight_kg": "50"},
            {"full_name": "A", "date_of_birth": "1980-03-15", "gender": "female", "weight_kg": True},
            {"full_name": "A", "date_of_birth": 320000000, "gender": "female"},
        ):
            await self._refused(api, world, harness, json.dumps(payload_for(world, patient=patient)).encode())


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


class TestQrDecoder:
    @pytest.mark.parametrize(("width", "height"), [(3000, 3000), (40_000, 40_000), (2**31 - 1, 2**31 - 1)])
    def test_oversized_images_are_refused_before_decoding(self, width: int, height: int) -> None:
        with pytest.raises(BadRequest, match="too large"):
            decode_qr(_png_header(width, height))

    def test_garbage_is_refused(self) -> None:
        with pytest.raises(BadRequest):
            decode_qr(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)


class TestCatchAll:
    async def test_an_unexpected_exception_is_problem_json_500_and_logged(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def explode() -> None:
            raise RuntimeError("secret detail 001180012345")

        harness.app.add_api_route("/tests/explode", explode)
        r = await harness.client.get("/tests/explode")
        body = _problem(r, 500)
        assert body["type"].endswith("/internal-error")
        assert "001180012345" not in r.text
        assert any(rec.name == "erx.failsafe" and rec.levelname == "ERROR" for rec in caplog.records)
