"""Submitting signed prescriptions: the signature, who may submit, idempotency and replays."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey

from kit.time import VIETNAM_TIME
from tests.conftest import Harness
from tests.factories import Api, World, payload_for, rand, sign, stored_count

CODE = re.compile(r"^[0-9A-Z]{5}[0-9A-Z]{7}-[cnhyt]$")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(data: dict[str, Any]) -> str:
    return b64(json.dumps(data).encode())


class TestHappyPath:
    async def test_created_read_and_signature_kept(self, api: Api, world: World, harness: Harness) -> None:
        payload = payload_for(world)
        token = world.prescriber.sign(payload)
        r = await api.submit(world.facility, token)
        assert r.status_code == 201, r.text
        created = r.json()
        assert CODE.match(created["code"]) and created["code"].startswith(world.facility.facility_code)
        assert created["code"].endswith("-c") and created["status"] == "active"
        issued = datetime.fromisoformat(payload["issued_at"]).astimezone(VIETNAM_TIME)
        # The end (23:59:59, Vietnam time) of the fifth day after the issue day.
        valid_until = datetime.fromisoformat(created["valid_until"])
        assert created["valid_until"].endswith("T23:59:59+07:00")
        assert valid_until.date() == issued.date() + timedelta(days=5)
        assert created["qr_png"].endswith(f"/api/v1/prescriptions/{created['code']}/qr.png")

        read = await api.client.get(
            f"/api/v1/prescriptions/{created['code'].lower()}", headers=world.facility.headers
        )
        assert read.status_code == 200
        record = read.json()
        assert record["code"] == created["code"] and record["status"] == "active"
        assert record["patient"]["national_id"] == payload["patient"]["national_id"]
        item = record["items"][0]
        assert (item["line_no"], item["quantity"], item["dispensed"], item["remaining"]) == (1, 10, 0, 10)
        # The prescriber's JWS is kept untouched: anyone can verify it again later.
        assert record["jws"] == token
        verified = jws.deserialize_compact(
            record["jws"], ECKey.import_key(world.prescriber.key.as_dict(private=False)), algorithms=["ES256"]
        )
        assert json.loads(verified.payload) == payload
        assert await stored_count(harness, world.facility.facility_code) == 1

    async def test_client_supplied_code_any_case(self, api: Api, world: World) -> None:
        code = f"{world.facility.facility_code}{rand(7)}-c"
        r = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, code=code.lower()[:-1] + "C"))
        )
        assert r.status_code == 201, r.text
        assert r.json()["code"] == code

    @pytest.mark.parametrize(
        ("make_code", "reason"),
        [
            (lambda f: f"{f}{rand(7)}-n", "kind"),
            (lambda f: f"ZZZZZ{rand(7)}-c", "facility"),
            (lambda f: f"{f}{rand(6)}-c", "format"),
            (lambda f: f"{f}{rand(6)}_-c", "format"),
        ],
    )
    async def test_client_code_must_match_format_facility_and_kind(
        self, api: Api, world: World, harness: Harness, make_code: Any, reason: str
    ) -> None:
        code = make_code(world.facility.facility_code)
        r = await api.submit(world.facility, world.prescriber.sign(payload_for(world, code=code)))
        assert r.status_code == 422, (reason, r.text)
        assert r.json()["errors"][0]["loc"][-1] == "code"
        assert await stored_count(harness, world.facility.facility_code) == 0

    async def test_client_code_already_used_is_409(self, api: Api, world: World) -> None:
        code = f"{world.facility.facility_code}{rand(7)}-c"
        assert (
            await api.submit(world.facility, world.prescriber.sign(payload_for(world, code=code)))
        ).status_code == 201
        again = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, code=code, notes="x"))
        )
        assert again.status_code == 409

    async def test_two_hundred_concurrent_submissions_get_distinct_codes(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        tokens = [world.prescriber.sign(payload_for(world, notes=f"n{i}")) for i in range(200)]
        answers = await asyncio.gather(*(api.submit(world.facility, t) for t in tokens))
        assert [a.status_code for a in answers] == [201] * 200
        codes = [a.json()["code"] for a in answers]
        assert len(set(codes)) == 200 and all(CODE.match(c) for c in codes)
        assert await stored_count(harness, world.facility.facility_code) == 200


class TestSignatureAttacks:
    """Every forged or malformed signature is 400 and stores nothing."""

    async def _refused(
        self, api: Api, world: World, harness: Harness, token: str, status: int = 400
    ) -> dict[str, Any]:
        r = await api.submit(world.facility, token)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert await stored_count(harness, world.facility.facility_code) == 0
        body: dict[str, Any] = r.json()
        return body

    async def test_tampered_payload(self, api: Api, world: World, harness: Harness) -> None:
        header, _, signature = world.prescriber.sign(payload_for(world)).split(".")
        tampered = payload_for(world, items=[world.products["normal"].line(quantity=500)])
        await self._refused(api, world, harness, f"{header}.{b64json(tampered)}.{signature}")

    async def test_another_prescribers_key(self, api: Api, world: World, harness: Harness) -> None:
        token = sign(payload_for(world), world.controlled_prescriber.key, world.prescriber.prescriber_id)
        await self._refused(api, world, harness, token)

    async def test_unknown_kid(self, api: Api, world: World, harness: Harness) -> None:
        token = sign(payload_for(world), world.prescriber.key, "BSNOBODY00")
        body = await self._refused(api, world, harness, token)
        assert body["errors"][0]["loc"][-1] == "kid"

    async def test_alg_none(self, api: Api, world: World, harness: Harness) -> None:
        token = f"{b64json({'alg': 'none', 'kid': world.prescriber.prescriber_id})}.{b64json(payload_for(world))}."
        body = await self._refused(api, world, harness, token)
        assert body["errors"][0]["loc"][-1] == "alg"

    async def test_hs256_with_the_public_key_as_secret(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        public = json.dumps(world.prescriber.key.as_dict(private=False)).encode()
        signing_input = f"{b64json({'alg': 'HS256', 'kid': world.prescriber.prescriber_id})}.{b64json(payload_for(world))}"
        mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        await self._refused(api, world, harness, f"{signing_input}.{b64(mac)}")

    async def test_es256_header_with_a_p384_signature(self, api: Api, world: World, harness: Harness) -> None:
        other = ec.generate_private_key(ec.SECP384R1())
        signing_input = f"{b64json({'alg': 'ES256', 'kid': world.prescriber.prescriber_id})}.{b64json(payload_for(world))}"
        r_value, s_value = decode_dss_signature(other.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        raw = r_value.to_bytes(48, "big") + s_value.to_bytes(48, "big")
        await self._refused(api, world, harness, f"{signing_input}.{b64(raw)}")

    async def test_es384_is_not_on_the_allow_list(self, api: Api, world: World, harness: Harness) -> None:
        key = ECKey.generate_key("P-384", private=True)
        token = jws.serialize_compact(
            {"alg": "ES384", "kid": world.prescriber.prescriber_id},
            json.dumps(payload_for(world)).encode(),
            key,
            algorithms=["ES384"],
        )
        await self._refused(api, world, harness, token)

    async def test_not_a_compact_jws(self, api: Api, world: World, harness: Harness) -> None:
        await self._refused(api, world, harness, "not-a-jws-at-all")

    async def test_signed_payload_that_is_not_json_is_422(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        token = sign(b"not json", world.prescriber.key, world.prescriber.prescriber_id)
        await self._refused(api, world, harness, token, status=422)


class TestWhoMaySubmit:
    async def test_payload_for_another_facility_is_403(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        other = await api.facility()
        payload = payload_for(world) | {"facility_code": other.facility_code}
        r = await api.submit(world.facility, world.prescriber.sign(payload))
        assert r.status_code == 403 and r.json()["errors"][0]["loc"][-1] == "facility_code"
        assert await stored_count(harness, other.facility_code) == 0

    async def test_prescriber_not_registered_at_the_facility_is_403(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        other = await api.facility()
        outsider = await api.prescriber([other.facility_code])
        r = await api.submit(world.facility, outsider.sign(payload_for(world)))
        assert r.status_code == 403
        assert await stored_count(harness, world.facility.facility_code) == 0

    async def test_suspended_prescriber_is_403(self, api: Api, world: World) -> None:
        await api.client.post(
            f"/api/v1/prescribers/{world.prescriber.prescriber_id}/suspend", headers=await api.admin_headers()
        )
        r = await api.submit(world.facility, world.prescriber.sign(payload_for(world)))
        assert r.status_code == 403

    async def test_controlled_kind_needs_an_allowed_prescriber(self, api: Api, world: World) -> None:
        payload = payload_for(world, kind="h")
        assert (await api.submit(world.facility, world.prescriber.sign(payload))).status_code == 403
        assert (
            await api.submit(world.facility, world.controlled_prescriber.sign(payload))
        ).status_code == 201


class TestIdempotencyAndReplay:
    async def test_replayed_jws_is_409(self, api: Api, world: World) -> None:
        token = world.prescriber.sign(payload_for(world))
        assert (await api.submit(world.facility, token)).status_code == 201
        assert (await api.submit(world.facility, token)).status_code == 409

    async def test_retry_with_the_same_key_returns_the_first_answer(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        token = world.prescriber.sign(payload_for(world))
        first = await api.submit(world.facility, token, key="k-1")
        second = await api.submit(world.facility, token, key="k-1")
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert await stored_count(harness, world.facility.facility_code) == 1

    async def test_same_key_different_body_is_409(self, api: Api, world: World) -> None:
        assert (
            await api.submit(world.facility, world.prescriber.sign(payload_for(world)), key="k-2")
        ).status_code == 201
        other = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, notes="khác")), key="k-2"
        )
        assert other.status_code == 409

    async def test_a_refused_request_does_not_burn_its_key(self, api: Api, world: World) -> None:
        bad = await api.submit(
            world.facility,
            world.prescriber.sign(payload_for(world, items=[world.products["normal"].line(days_supply=99)])),
            key="k-3",
        )
        assert bad.status_code == 422
        good = await api.submit(world.facility, world.prescriber.sign(payload_for(world)), key="k-3")
        assert good.status_code == 201

    async def test_concurrent_retries_store_one_prescription(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        token = world.prescriber.sign(payload_for(world))
        answers = await asyncio.gather(*(api.submit(world.facility, token, key="k-race") for _ in range(12)))
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["code"] for a in answers}) == 1
        assert await stored_count(harness, world.facility.facility_code) == 1

    async def test_keys_are_per_facility(self, api: Api, world: World) -> None:
        other_world = await api.world()
        a = await api.submit(world.facility, world.prescriber.sign(payload_for(world)), key="shared")
        b = await api.submit(
            other_world.facility, other_world.prescriber.sign(payload_for(other_world)), key="shared"
        )
        assert a.status_code == b.status_code == 201 and a.json()["code"] != b.json()["code"]
