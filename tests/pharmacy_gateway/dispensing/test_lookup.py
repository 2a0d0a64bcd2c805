"""Lookup by typed code or scanned QR: what a pharmacist sees, and the access log of every lookup."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey

from tests.clients import Gateway, gateway_for
from tests.conftest import Harness
from tests.factories import Api, World, access_entries, facility_view, line, now_iso, prescribe

CONTRACT_FIELDS = {"code", "kind", "status", "issued_at", "valid_until", "patient", "items"}
ITEM_FIELDS = {
    "line_no",
    "active_ingredient",
    "strength",
    "dosage_form",
    "registration_no",
    "quantity",
    "unit",
    "instructions",
    "days_supply",
    "dispensed",
    "remaining",
    "substitutes",
}


async def full_record(api: Api, w: World, code: str) -> dict[str, Any]:
    return await facility_view(api, w, code)


class TestFindingThePrescription:
    async def test_typed_code_in_any_case_and_with_spaces(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        for typed in (code, code.lower(), code.upper(), f"  {code.lower()}  ", f"\t{code}\n"):
            r = await gw.lookup(typed)
            assert r.status_code == 200, (typed, r.text)
            assert r.json()["code"] == code
            assert r.json()["qr_verified"] is None

    async def test_full_qr_text_is_accepted_and_verified(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        qr_text = (await full_record(api, world, code))["qr_text"]
        r = await gw.lookup(qr_text)
        assert r.status_code == 200, r.text
        assert r.json()["code"] == code and r.json()["qr_verified"] is True
        # A scanner may add a newline or lower-case the code part.
        head, _, rest = qr_text.partition(".")
        r = await gw.lookup(f" {head.lower()}.{rest}\n")
        assert r.status_code == 200 and r.json()["qr_verified"] is True

    async def test_qr_of_another_prescription_does_not_verify(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        first = await prescribe(api, world)
        second = await prescribe(api, world)
        other_qr = (await full_record(api, world, second))["qr_text"]
        signed_part = other_qr.partition(".")[2]
        r = await gw.lookup(f"{first}.{signed_part}")
        assert r.status_code == 200
        assert r.json()["code"] == first and r.json()["qr_verified"] is False

    async def test_forged_qr_signature_does_not_verify(
        self, api: Api, world: World, gw: Gateway, harness: Harness
    ) -> None:
        code = await prescribe(api, world)
        genuine = (await full_record(api, world, code))["qr_text"]
        claims = genuine.partition(".")[2].split(".")[1]
        forger = ECKey.generate_key("P-256", private=True)
        header = {"alg": "ES256", "kid": harness.runtime.keyring.active_kid}
        payload = base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))
        forged = jws.serialize_compact(header, payload, forger, algorithms=["ES256"])
        for text in (f"{code}.{forged}", f"{code}.not-a-jws", f"{code}.a.b.c"):
            r = await gw.lookup(text)
            assert r.status_code == 200, r.text
            assert r.json()["qr_verified"] is False

    async def test_unknown_and_malformed_codes_are_404(self, world: World, gw: Gateway) -> None:
        unknown = f"{world.facility.facility_code}ZZZZZZZ-c"
        for text in (unknown, "hello", "01001AAAAAAA-x", f"{unknown}.garbage"):
            r = await gw.lookup(text)
            assert r.status_code == 404, (text, r.text)
            assert r.headers["content-type"] == "application/problem+json"


class TestWhatThePharmacistSees:
    async def test_answer_has_the_contract_fields_and_no_identity(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        r = await gw.lookup(code)
        body = r.json()
        assert set(body) >= CONTRACT_FIELDS
        assert body["facility_name"] and body["prescriber_name"]
        assert body["status"] == "active" and body["kind"] == "c"
        assert body["issued_at"].endswith("+07:00") and body["valid_until"].endswith("+07:00")
        assert body["patient"] == {"full_name": "Trần Thị Bình", "gender": "female", "birth_year": 1980}
        assert set(body["items"][0]) == ITEM_FIELDS
        assert body["items"][0]["quantity"] == 10
        assert body["items"][0]["dispensed"] == 0 and body["items"][0]["remaining"] == 10
        text = r.text
        for secret in ("001180012345", "DN4010112345678", "1980-03-15", "J02.9", "Viêm họng"):
            assert secret not in text
        for field in ("diagnoses", "national_id", "insurance_no", "date_of_birth", "jws", "qr_text"):
            assert field not in text

    async def test_hiv_patients_are_shown_by_initials(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world, diagnoses=[{"icd10": "B20", "text": "Bệnh HIV"}])
        r = await gw.lookup(code)
        assert r.status_code == 200
        assert r.json()["patient"]["full_name"] == "T. T. B."
        assert "Trần" not in r.text and "B20" not in r.text and "HIV" not in r.text

    async def test_substitutes_are_registered_products_of_the_same_line(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        base = world.products["normal"]
        generic = await api.product(ingredient=base.active_ingredient.upper(), name="Generic A", price=700)
        other_strength = await api.product(ingredient=base.active_ingredient, strength="250mg")
        code = await prescribe(api, world)
        substitutes = (await gw.lookup(code)).json()["items"][0]["substitutes"]
        numbers = {s["registration_no"] for s in substitutes}
        assert {base.registration_no, generic.registration_no} <= numbers
        assert other_strength.registration_no not in numbers
        cheap = next(s for s in substitutes if s["registration_no"] == generic.registration_no)
        assert cheap == {
            "registration_no": generic.registration_no,
            "name": "Generic A",
            "unit": "viên",
            "declared_price": 700,
        }

    async def test_status_and_quantities_follow_dispensing(self, api: Api, world: World, gw: Gateway) -> None:
        product = world.products["normal"]
        code = await prescribe(api, world)
        assert (await gw.dispense(code, line(1, product.registration_no, 3))).status_code == 201
        body = (await gw.lookup(code)).json()
        assert body["status"] == "partially_dispensed"
        assert (body["items"][0]["dispensed"], body["items"][0]["remaining"]) == (3, 7)

    async def test_cancelled_prescription_is_shown_as_cancelled(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        r = await api.client.post(
            f"/api/v1/prescriptions/{code}/cancel", json={"reason": "Kê nhầm"}, headers=world.facility.headers
        )
        assert r.status_code == 200
        assert (await gw.lookup(code)).json()["status"] == "cancelled"

    async def test_replaced_prescription_names_its_replacement(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        old = await prescribe(api, world)
        new = await prescribe(api, world, replaces=old)
        body = (await gw.lookup(old)).json()
        assert body["status"] == "replaced" and body["replaced_by"] == new

    async def test_expired_prescription_is_shown_as_expired(self, tuned: Harness) -> None:
        w = await tuned.api.world()
        code = await prescribe(tuned.api, w, issued_at=now_iso(-timedelta(days=6)))
        gw = await gateway_for(tuned)
        assert (await gw.lookup(code)).json()["status"] == "expired"


class TestAccessLog:
    async def test_every_lookup_reaches_the_facility_access_log(
        self, api: Api, world: World, gw: Gateway
    ) -> None:
        code = await prescribe(api, world)
        await gw.lookup(code)
        await gw.lookup(code.lower())
        r = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=world.facility.headers)
        lookups = [e for e in r.json() if e["actor_kind"] == "pharmacy"]
        assert len(lookups) == 2
        assert all(
            e["actor_code"] == gw.pharmacy.connection_code and e["action"] == "lookup" for e in lookups
        )

    async def test_unknown_codes_are_logged_too(self, harness: Harness, world: World, gw: Gateway) -> None:
        unknown = f"{world.facility.facility_code}QQQQQQQ-n"
        assert (await gw.lookup(unknown.lower())).status_code == 404
        entries = await access_entries(harness, unknown)
        assert [(e.actor_kind, e.actor_code, e.action) for e in entries] == [
            ("pharmacy", gw.pharmacy.connection_code, "lookup_not_found")
        ]
        garbage = "DROP TABLE prescription; --"
        assert (await gw.lookup(garbage)).status_code == 404
        marked = await access_entries(harness, "?" + garbage[:12])
        assert len(marked) == 1 and marked[0].actor_code == gw.pharmacy.connection_code

    async def test_a_suspended_pharmacy_cannot_look_up(self, api: Api, world: World, gw: Gateway) -> None:
        code = await prescribe(api, world)
        r = await api.client.post(
            f"/api/v1/pharmacies/{gw.pharmacy.connection_code}/suspend", headers=await api.admin_headers()
        )
        assert r.status_code == 200
        assert (await gw.lookup(code)).status_code == 401
