"""The prescriber console over HTTP: choosing the prescriber, submitting browser-signed JWS, printing."""

from __future__ import annotations

import json
import re
import string
from typing import Any

from eprescribe.prescriptions.policy import POLICY, chronic_conditions
from tests.clients import Browser, Browsers
from tests.conftest import Harness
from tests.factories import Api, World, access_entries, child_birthdate, payload_for, rand

SUBMIT = "/console/prescriber/api/prescriptions"


def page_json(html: str, element_id: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert found, element_id
    return json.loads(found.group(1))


async def signed_in(api: Api, browsers: Browsers) -> tuple[World, Browser]:
    w = await api.world()
    browser = browsers()
    await browser.as_prescriber(w)
    return w, browser


class TestChoosingThePrescriber:
    async def test_lists_only_the_active_prescribers_of_the_facility(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        elsewhere = await api.facility()
        stranger = await api.prescriber([elsewhere.facility_code])
        suspended = await api.prescriber([w.facility.facility_code])
        r = await api.client.post(
            f"/api/v1/prescribers/{suspended.prescriber_id}/suspend", headers=await api.admin_headers()
        )
        assert r.status_code == 200
        browser = browsers()
        await browser.prescriber_sign_in(w.facility)
        page = await browser.get("/console/prescriber/prescribers")
        shown = set(re.findall(r'data-prescriber="([^"]+)"', page.text))
        assert shown == {w.prescriber.prescriber_id, w.controlled_prescriber.prescriber_id}
        assert stranger.prescriber_id not in page.text

    async def test_the_desk_asks_for_a_prescriber_first(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        browser = browsers()
        await browser.prescriber_sign_in(w.facility)
        desk = await browser.client.get("/console/prescriber")
        assert desk.status_code == 303
        assert desk.headers["location"] == "/console/prescriber/prescribers"

    async def test_another_facilitys_prescriber_cannot_be_chosen(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        elsewhere = await api.facility()
        stranger = await api.prescriber([elsewhere.facility_code])
        browser = browsers()
        await browser.prescriber_sign_in(w.facility)
        refused = await browser.post_form(
            "/console/prescriber/prescribers", {"prescriber_id": stranger.prescriber_id}
        )
        assert refused.status_code == 403
        assert (await browser.client.get("/console/prescriber")).status_code == 303

    async def test_the_desk_serves_the_registered_public_key_and_the_policy(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        desk = await browser.get("/console/prescriber")
        page = page_json(desk.text, "console-page")
        registered = w.prescriber.key.as_dict(private=False)
        assert page["public_jwk"] == {k: registered[k] for k in ("kty", "crv", "x", "y")}
        assert page["prescriber_id"] == w.prescriber.prescriber_id
        assert page["facility_code"] == w.facility.facility_code
        assert '"d"' not in json.dumps(page)
        policy = page_json(desk.text, "console-policy")
        assert policy["max_days_supply"] == POLICY.max_days_supply
        assert policy["guardian_required_under_months"] == POLICY.guardian_required_under_months
        assert policy["kind_of_category"]["precursor"] == "h"
        assert set(policy["chronic_icd10"]) == set(chronic_conditions().entries)
        # Texts for the script come in the visitor's language.
        assert page_json(desk.text, "console-text")["console.js.required"] == "Bắt buộc."


class TestPrescribing:
    async def test_a_browser_signed_jws_is_stored_for_the_session_facility(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        created = await browser.post_json(SUBMIT, {"jws": w.prescriber.sign(payload_for(w))})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "active"
        assert body["print_url"] == f"/console/prescriber/prescriptions/{body['code']}"
        read = await api.client.get(f"/api/v1/prescriptions/{body['code']}", headers=w.facility.headers)
        assert read.status_code == 200
        assert read.json()["prescriber_id"] == w.prescriber.prescriber_id
        log = await api.client.get(
            f"/api/v1/prescriptions/{body['code']}/access-log", headers=w.facility.headers
        )
        assert log.json()[0]["action"] == "create"
        assert log.json()[0]["actor_code"] == w.facility.facility_code

    async def test_the_rules_refuse_with_field_errors_and_store_nothing(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        child = {"full_name": "Bé Na", "date_of_birth": child_birthdate(20), "gender": "female"}
        refused = await browser.post_json(SUBMIT, {"jws": w.prescriber.sign(payload_for(w, patient=child))})
        assert refused.status_code == 422
        locs = {tuple(e["loc"]) for e in refused.json()["errors"]}
        assert ("payload", "patient", "guardian") in locs
        assert ("payload", "patient", "weight_kg") in locs
        recent = await browser.get("/console/prescriber/recent")
        assert "data-code=" not in recent.text

    async def test_a_prescription_naming_another_facility_is_refused(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        other = await api.facility()
        payload = payload_for(w) | {"facility_code": other.facility_code}
        refused = await browser.post_json(SUBMIT, {"jws": w.prescriber.sign(payload)})
        assert refused.status_code == 403

    async def test_a_repeated_idempotency_key_returns_the_first_answer(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        jws = w.prescriber.sign(payload_for(w))
        key = {"Idempotency-Key": rand(20)}
        first = await browser.post_json(SUBMIT, {"jws": jws}, headers=key)
        second = await browser.post_json(SUBMIT, {"jws": jws}, headers=key)
        assert first.status_code == second.status_code == 201
        assert first.json()["code"] == second.json()["code"]

    async def test_without_a_session_the_api_answers_401(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        refused = await browsers().client.post(SUBMIT, json={"jws": w.prescriber.sign(payload_for(w))})
        assert refused.status_code == 401


class TestPrintAndRecent:
    async def test_the_print_page_has_the_qr_and_the_code_in_large_type(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await browser.post_json(SUBMIT, {"jws": w.prescriber.sign(payload_for(w))})).json()["code"]
        page = await browser.get(f"/console/prescriber/prescriptions/{code}")
        assert page.status_code == 200
        qr = re.search(r'<figure class="paper-qr"[^>]*>(.*?)</figure>', page.text, re.S)
        assert qr and qr.group(1).strip().startswith("<svg") and "<path" in qr.group(1)
        assert "<?xml" not in page.text
        assert f'<p class="paper-code" data-code>{code}</p>' in page.text
        # Identity numbers stay off paper.
        assert "001180012345" not in page.text and "DN4010112345678" not in page.text
        css = await browser.client.get("/static/erx/console.css")
        assert "size: A5" in css.text

    async def test_printing_another_facilitys_prescription_is_404(self, api: Api, browsers: Browsers) -> None:
        mine = await api.world()
        theirs = await api.prescribe(mine)
        other, browser = await signed_in(api, browsers)
        assert other.facility.facility_code != mine.facility.facility_code
        page = await browser.client.get(f"/console/prescriber/prescriptions/{theirs['code']}")
        assert page.status_code == 404

    async def test_recent_prescriptions_show_their_live_status(self, api: Api, browsers: Browsers) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await browser.post_json(SUBMIT, {"jws": w.prescriber.sign(payload_for(w))})).json()["code"]
        before = await browser.get("/console/prescriber/recent")
        assert f'data-code="{code}"' in before.text and 'data-status="active"' in before.text
        pharmacy = await api.pharmacy()
        product = w.products["normal"]
        sold = await api.client.post(
            f"/gateway/v1/prescriptions/{code}/dispenses",
            json={
                "pharmacist": {"full_name": "DS. An", "license_no": "0001/HNO"},
                "items": [{"line_no": 1, "registration_no": product.registration_no, "quantity": 3}],
            },
            headers=pharmacy.headers,
        )
        assert sold.status_code == 201, sold.text
        after = await browser.get("/console/prescriber/recent")
        assert 'data-status="partially_dispensed"' in after.text
        desk = await browser.get("/console/prescriber")
        assert f'data-code="{code}"' in desk.text

    async def test_every_list_showing_patient_names_is_in_the_access_log(
        self, api: Api, browsers: Browsers, harness: Harness
    ) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await browser.post_json(SUBMIT, {"jws": w.prescriber.sign(payload_for(w))})).json()["code"]
        await browser.get("/console/prescriber/recent")
        await browser.get("/console/prescriber")
        entries = await access_entries(harness, code)
        listed = [e for e in entries if e.action == "console_list"]
        assert len(listed) == 2
        assert {(e.actor_kind, e.actor_code) for e in listed} == {("facility", w.facility.facility_code)}
        assert all(e.client_address == browser.address for e in listed)


class TestFormData:
    async def test_icd10_search_ignores_diacritics_and_case(self, browsers: Browsers) -> None:
        client = browsers().client
        plain = (await client.get("/console/api/icd10", params={"q": "viem hong"})).json()["items"]
        marked = (await client.get("/console/api/icd10", params={"q": "Viêm Họng"})).json()["items"]
        assert [i["code"] for i in plain] == [i["code"] for i in marked]
        assert "J02.9" in [i["code"] for i in plain]
        by_code = (await client.get("/console/api/icd10", params={"q": "j02"})).json()["items"]
        assert by_code[0]["code"] == "J02.9"

    async def test_icd10_answers_say_which_codes_are_chronic(self, browsers: Browsers) -> None:
        items = (await browsers().client.get("/console/api/icd10", params={"q": "I10"})).json()["items"]
        assert items[0]["code"] == "I10"
        assert items[0]["chronic"] is chronic_conditions().covers("I10")

    async def test_the_public_policy_answer_matches_the_table(self, browsers: Browsers) -> None:
        policy = (await browsers().client.get("/console/api/policy")).json()
        assert policy["narcotic_max_days_acute"] == POLICY.narcotic_max_days_acute
        assert policy["psychotropic_max_days_long_term"] == POLICY.psychotropic_max_days_long_term
        assert policy["max_days_supply_chronic"] == POLICY.max_days_supply_chronic

    async def test_pages_are_vietnamese_first_with_english_available(
        self, api: Api, browsers: Browsers
    ) -> None:
        browser = browsers()
        vi = await browser.get("/console/prescriber/sign-in")
        assert '<html lang="vi">' in vi.text and "Đăng nhập" in vi.text
        en = await browser.get("/console/prescriber/sign-in?lang=en")
        assert '<html lang="en">' in en.text and "Sign in to the prescribing desk" in en.text
        assert en.headers["content-security-policy"].startswith("default-src 'self'")

    async def test_catalogue_search_finds_products_without_diacritics(
        self, api: Api, browsers: Browsers
    ) -> None:
        ingredient = f"thuốc ho {rand(5, string.ascii_lowercase)}"
        await api.product(ingredient=ingredient, name=f"Bổ phế {ingredient}")
        folded = ingredient.replace("ố", "o")
        found = (await browsers().client.get("/api/v1/drugs", params={"q": folded})).json()["items"]
        assert [d["active_ingredient"] for d in found] == [ingredient]
