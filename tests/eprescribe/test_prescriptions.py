"""Submitting, reading, replacing and cancelling signed prescriptions."""

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
from sqlalchemy import func, select

from eprescribe import service as registry
from eprescribe.models import Prescription
from tests.conftest import Harness
from tests.factories import Api, World, child_birthdate, now_iso, payload_for, rand, sign

CODE = re.compile(r"^[0-9A-Z]{5}[0-9A-Z]{7}-[cnhyt]$")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(data: dict[str, Any]) -> str:
    return b64(json.dumps(data).encode())


async def stored_count(harness: Harness, facility_code: str) -> int:
    async with harness.runtime.database.sessionmaker() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(Prescription)
                    .where(Prescription.facility_code == facility_code)  # type: ignore[arg-type]
                )
            ).scalar_one()
        )


@pytest.fixture
async def world(api: Api) -> World:
    return await api.world()


class TestHappyPath:
    async def test_created_read_and_signature_kept(self, api: Api, world: World, harness: Harness) -> None:
        payload = payload_for(world)
        token = world.prescriber.sign(payload)
        r = await api.submit(world.facility, token)
        assert r.status_code == 201, r.text
        created = r.json()
        assert CODE.match(created["code"]) and created["code"].startswith(world.facility.facility_code)
        assert created["code"].endswith("-c") and created["status"] == "active"
        issued = datetime.fromisoformat(payload["issued_at"])
        assert datetime.fromisoformat(created["valid_until"]) == issued + timedelta(days=5)
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


def rejected_at(r: Any, *loc: Any) -> bool:
    return r.status_code == 422 and any(tuple(e["loc"][-len(loc) :]) == loc for e in r.json()["errors"])


class TestPolicy:
    """Each rule of the policy table, refused with 422 and the field named."""

    async def submit(self, api: Api, world: World, **kwargs: Any) -> Any:
        prescriber = world.controlled_prescriber if kwargs.get("kind", "c") in "nh" else world.prescriber
        return await api.submit(world.facility, prescriber.sign(payload_for(world, **kwargs)))

    async def test_days_of_supply_30_or_90_with_chronic_diagnosis(self, api: Api, world: World) -> None:
        normal = world.products["normal"]
        assert rejected_at(
            await self.submit(api, world, items=[normal.line(days_supply=31)]), "items", 0, "days_supply"
        )
        assert (await self.submit(api, world, items=[normal.line(days_supply=30)])).status_code == 201
        hypertension = [{"icd10": "I10", "text": "Tăng huyết áp vô căn"}]
        assert (
            await self.submit(api, world, items=[normal.line(days_supply=90)], diagnoses=hypertension)
        ).status_code == 201
        diabetes_subcode = [{"icd10": "E11.9", "text": "Đái tháo đường típ 2"}]
        assert (
            await self.submit(api, world, items=[normal.line(days_supply=90)], diagnoses=diabetes_subcode)
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, items=[normal.line(days_supply=91)], diagnoses=hypertension),
            "items",
            0,
            "days_supply",
        )

    async def test_narcotics_7_days_acute_10_per_round_for_cancer(self, api: Api, world: World) -> None:
        narcotic = world.products["narcotic"]
        assert rejected_at(
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=8)]),
            "items",
            0,
            "days_supply",
        )
        assert (
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=7)])
        ).status_code == 201
        cancer = [{"icd10": "C34.9", "text": "U ác tính phổi"}]
        assert (
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=10)], diagnoses=cancer)
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="n", items=[narcotic.line(days_supply=11)], diagnoses=cancer),
            "items",
            0,
            "days_supply",
        )

    async def test_psychotropics_10_days_acute_30_long_term(self, api: Api, world: World) -> None:
        psycho = world.products["psychotropic"]
        assert rejected_at(
            await self.submit(api, world, kind="h", items=[psycho.line(days_supply=11)]),
            "items",
            0,
            "days_supply",
        )
        epilepsy = [{"icd10": "G40.9", "text": "Động kinh"}]
        assert (
            await self.submit(api, world, kind="h", items=[psycho.line(days_supply=30)], diagnoses=epilepsy)
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="h", items=[psycho.line(days_supply=31)], diagnoses=epilepsy),
            "items",
            0,
            "days_supply",
        )

    async def test_precursor_goes_on_a_psychotropic_prescription(self, api: Api, world: World) -> None:
        precursor = world.products["precursor"]
        assert (
            await self.submit(api, world, kind="h", items=[precursor.line(days_supply=5)])
        ).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="c", items=[precursor.line(days_supply=5)]),
            "items",
            0,
            "active_ingredient",
        )

    async def test_child_under_72_months_needs_guardian_and_weight(self, api: Api, world: World) -> None:
        child = {"full_name": "Bé Na", "date_of_birth": child_birthdate(30), "gender": "female"}
        r = await self.submit(api, world, patient=child)
        assert rejected_at(r, "patient", "guardian") and rejected_at(r, "patient", "weight_kg")
        ok = child | {"weight_kg": 13.5, "guardian": {"full_name": "Nguyễn Thị Mẹ", "phone": "0912345678"}}
        assert (await self.submit(api, world, patient=ok)).status_code == 201
        older = {"full_name": "Bé Tí", "date_of_birth": child_birthdate(80), "gender": "male"}
        assert (await self.submit(api, world, patient=older)).status_code == 201

    async def test_narcotic_needs_national_id(self, api: Api, world: World) -> None:
        patient = {"full_name": "Lê Văn C", "date_of_birth": "1960-01-01", "gender": "male"}
        assert rejected_at(await self.submit(api, world, kind="n", patient=patient), "patient", "national_id")

    async def test_quantities_are_positive_integers(self, api: Api, world: World) -> None:
        line = world.products["normal"].line()
        for bad in (0, -3, 1.5, "3"):
            r = await self.submit(api, world, items=[line | {"quantity": bad}])
            assert rejected_at(r, "items", 0, "quantity"), bad

    async def test_one_kind_per_prescription(self, api: Api, world: World) -> None:
        items = [world.products["narcotic"].line(days_supply=5), world.products["normal"].line(days_supply=5)]
        r = await self.submit(api, world, kind="n", items=items)
        assert rejected_at(r, "items", 1, "active_ingredient")
        assert "split" in r.json()["errors"][0]["msg"]

    async def test_traditional_kinds(self, api: Api, world: World) -> None:
        herbal = world.products["traditional"]
        assert (await self.submit(api, world, kind="y", items=[herbal.line()])).status_code == 201
        assert (await self.submit(api, world, kind="t", items=[herbal.line()])).status_code == 201
        assert rejected_at(
            await self.submit(api, world, kind="y", items=[world.products["normal"].line()]),
            "items",
            0,
            "active_ingredient",
        )

    async def test_supplements_are_never_prescribed(self, api: Api, world: World) -> None:
        r = await self.submit(api, world, items=[world.products["supplement"].line()])
        assert rejected_at(r, "items", 0, "active_ingredient") and "supplement" in r.json()["detail"]

    async def test_products_must_exist_and_match_the_line(self, api: Api, world: World) -> None:
        normal = world.products["normal"]
        unknown = normal.line(with_registration=True) | {"registration_no": "VD-00000-00-NOPE"}
        assert rejected_at(await self.submit(api, world, items=[unknown]), "items", 0, "registration_no")
        other = await api.product(strength="250mg", ingredient=normal.active_ingredient)
        mismatch = normal.line() | {"registration_no": other.registration_no}
        assert rejected_at(await self.submit(api, world, items=[mismatch]), "items", 0, "registration_no")
        spaced = normal.line(with_registration=True) | {"strength": normal.strength.replace("mg", " MG")}
        assert (await self.submit(api, world, items=[spaced])).status_code == 201
        unregistered = normal.line() | {"active_ingredient": "unobtainium"}
        assert rejected_at(
            await self.submit(api, world, items=[unregistered]), "items", 0, "active_ingredient"
        )

    async def test_issued_at_must_be_recent(self, api: Api, world: World) -> None:
        assert rejected_at(
            await self.submit(api, world, issued_at=now_iso(timedelta(minutes=30))), "issued_at"
        )
        assert rejected_at(
            await self.submit(api, world, issued_at=now_iso(-timedelta(hours=25))), "issued_at"
        )
        assert (await self.submit(api, world, issued_at=now_iso(-timedelta(hours=23)))).status_code == 201

    async def test_unknown_fields_and_bad_shapes_are_named(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        r = await self.submit(api, world, quantityy=3)
        assert rejected_at(r, "quantityy")
        r = await self.submit(api, world, diagnoses=[{"icd10": "not-icd", "text": "x"}])
        assert rejected_at(r, "diagnoses", 0, "icd10")
        r = await self.submit(
            api, world, patient={"full_name": "A", "date_of_birth": "2030-01-01", "gender": "male"}
        )
        assert rejected_at(r, "patient", "date_of_birth")
        assert await stored_count(harness, world.facility.facility_code) == 0


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


class TestReplaceAndCancel:
    async def test_replacement_retires_the_original(self, api: Api, world: World) -> None:
        original = await api.prescribe(world)
        fixed = await api.prescribe(world, replaces=original["code"].lower())
        old = (
            await api.client.get(f"/api/v1/prescriptions/{original['code']}", headers=world.facility.headers)
        ).json()
        new = (
            await api.client.get(f"/api/v1/prescriptions/{fixed['code']}", headers=world.facility.headers)
        ).json()
        assert old["status"] == "replaced" and old["replaced_by"] == fixed["code"]
        assert new["replaces"] == original["code"]
        again = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, replaces=original["code"]))
        )
        assert again.status_code == 409

    async def test_cannot_replace_another_facilitys_prescription(self, api: Api, world: World) -> None:
        other_world = await api.world()
        theirs = await api.prescribe(other_world)
        r = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, replaces=theirs["code"]))
        )
        assert rejected_at(r, "replaces")

    async def test_cancel_once_while_nothing_dispensed(self, api: Api, world: World) -> None:
        created = await api.prescribe(world)
        r = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel",
            json={"reason": "Kê nhầm thuốc"},
            headers=world.facility.headers,
        )
        assert (
            r.status_code == 200
            and r.json()["status"] == "cancelled"
            and r.json()["cancel_reason"] == "Kê nhầm thuốc"
        )
        again = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel",
            json={"reason": "x"},
            headers=world.facility.headers,
        )
        assert again.status_code == 409
        missing = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel", json={}, headers=world.facility.headers
        )
        assert rejected_at(missing, "reason")

    async def test_cannot_cancel_or_replace_after_a_dispense(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        created = await api.prescribe(world)
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            prescription = await registry.find_prescription(session, created["code"])
            assert prescription is not None and prescription.id is not None
            locked = await registry.open_for_dispensing(session, prescription.id, prescription.issued_at)
            assert locked is not None
            assert await registry.take_quantity(session, prescription.id, 1, 4) == (4, 6)
            assert await registry.take_quantity(session, prescription.id, 1, 7) is None
            assert await registry.settle_status(session, prescription.id) == "partially_dispensed"
        r = await api.client.post(
            f"/api/v1/prescriptions/{created['code']}/cancel",
            json={"reason": "x"},
            headers=world.facility.headers,
        )
        assert r.status_code == 409
        replacement = await api.submit(
            world.facility, world.prescriber.sign(payload_for(world, replaces=created["code"]))
        )
        assert replacement.status_code == 409
        record = (
            await api.client.get(f"/api/v1/prescriptions/{created['code']}", headers=world.facility.headers)
        ).json()
        assert record["status"] == "partially_dispensed"
        assert (record["items"][0]["dispensed"], record["items"][0]["remaining"]) == (4, 6)


class TestIsolationBetweenFacilities:
    async def test_another_facility_sees_nothing(self, api: Api, world: World) -> None:
        created = await api.prescribe(world)
        intruder = await api.facility()
        code = created["code"]
        for method, path, body in [
            ("GET", f"/api/v1/prescriptions/{code}", None),
            ("GET", f"/api/v1/prescriptions/{code}/qr.png", None),
            ("GET", f"/api/v1/prescriptions/{code}/access-log", None),
            ("POST", f"/api/v1/prescriptions/{code}/cancel", {"reason": "x"}),
        ]:
            r = await api.client.request(method, path, json=body, headers=intruder.headers)
            assert r.status_code == 404, path
            assert "Trần" not in r.text and "001180012345" not in r.text
        record = (
            await api.client.get(f"/api/v1/prescriptions/{code}", headers=world.facility.headers)
        ).json()
        assert record["status"] == "active"
        log = (
            await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers)
        ).json()
        assert {"actor_kind": "facility", "actor_code": intruder.facility_code, "action": "read_denied"} in [
            {k: e[k] for k in ("actor_kind", "actor_code", "action")} for e in log
        ]


class TestAccessLog:
    async def test_every_access_is_recorded(self, api: Api, world: World) -> None:
        created = await api.prescribe(world)
        code = created["code"]
        await api.client.get(f"/api/v1/prescriptions/{code}", headers=world.facility.headers)
        await api.client.get(f"/api/v1/prescriptions/{code}/qr.svg", headers=world.facility.headers)
        log = (
            await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers)
        ).json()
        assert [e["action"] for e in log] == ["create", "read", "qr_svg", "read_access_log"]
        assert all(
            e["actor_code"] == world.facility.facility_code and e["at"].endswith("+07:00") for e in log
        )


class TestStatus:
    async def test_expired_is_derived_from_valid_until(
        self, api: Api, world: World, harness: Harness
    ) -> None:
        created = await api.prescribe(world)
        async with harness.runtime.database.sessionmaker() as session:
            prescription = await registry.find_prescription(session, created["code"])
            assert prescription is not None
            assert registry.effective_status(prescription) == "active"
            later = prescription.valid_until + timedelta(seconds=1)
            assert registry.effective_status(prescription, later) == "expired"
            assert await registry.open_for_dispensing(session, prescription.id or 0, later) is None
