"""The prescriber console over HTTP: the session check a form resumes with, a patient's earlier
prescriptions (each listing logged), renewing, correcting and cancelling, and the complete paper."""

from __future__ import annotations

import re
from typing import Any

from kit.text import vietnamese_name_key
from tests.clients import Browser, Browsers
from tests.eprescribe.console.test_console import SUBMIT, page_json, signed_in
from tests.factories import Api, World, payload_for

PATIENTS = "/console/prescriber/patients"


async def access_actions(api: Api, w: World, code: str) -> list[str]:
    log = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=w.facility.headers)
    return [e["action"] for e in log.json()]


async def search(browser: Browser, **form: str) -> Any:
    return await browser.post_form(PATIENTS, form)


class TestSessionResume:
    async def test_the_session_answer_names_the_desk_and_its_token(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        r = await browser.get("/console/prescriber/api/session")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert r.json() == {
            "facility_code": w.facility.facility_code,
            "prescriber_id": w.prescriber.prescriber_id,
            "csrf_token": browser.csrf,
        }

    async def test_without_a_session_it_is_401_problem_json(self, browsers: Browsers) -> None:
        r = await browsers().client.get("/console/prescriber/api/session", headers={"Accept": "text/html"})
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"

    async def test_the_desk_carries_the_session_url_and_the_resume_words(
        self, api: Api, browsers: Browsers
    ) -> None:
        _, browser = await signed_in(api, browsers)
        desk = await browser.get("/console/prescriber")
        assert page_json(desk.text, "console-page")["session_url"] == "/console/prescriber/api/session"
        text = page_json(desk.text, "console-text")
        assert "Đăng nhập lại" in text["console.js.sign_in_again"]
        assert text["console.js.session_ended"].startswith("Phiên làm việc đã hết")


class TestPatientHistory:
    async def test_finds_by_citizen_id_only_at_this_facility_and_logs_each(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        mine = await api.prescribe(w, notes="one")
        other = await api.world()
        theirs = await api.prescribe(other, notes="two")
        found = await search(browser, by="national_id", national_id="001180012345")
        assert found.status_code == 200
        assert f'data-code="{mine["code"]}"' in found.text and theirs["code"] not in found.text
        assert "patient_search" in await access_actions(api, w, mine["code"])
        assert "patient_search" not in await access_actions(api, other, theirs["code"])

    async def test_finds_by_insurance_number_and_by_name_with_birth_date(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await api.prescribe(w))["code"]
        by_card = await search(browser, by="insurance_no", insurance_no="dn4010112345678")
        assert f'data-code="{code}"' in by_card.text
        by_name = await search(browser, by="name", full_name="tran thi  BINH", date_of_birth="15/03/1980")
        assert f'data-code="{code}"' in by_name.text
        wrong_day = await search(browser, by="name", full_name="Trần Thị Bình", date_of_birth="16/03/1980")
        assert code not in wrong_day.text and "Không có đơn nào" in wrong_day.text

    async def test_a_malformed_number_is_explained_and_searches_nothing(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await api.prescribe(w))["code"]
        refused = await search(browser, by="national_id", national_id="12345")
        assert refused.status_code == 422 and "12 chữ số" in refused.text
        assert "patient_search" not in await access_actions(api, w, code)

    async def test_identity_numbers_never_travel_in_an_address(self, api: Api, browsers: Browsers) -> None:
        _, browser = await signed_in(api, browsers)
        form = await browser.get(PATIENTS)
        assert 'method="post" action="/console/prescriber/patients"' in form.text


class TestRenewReplaceCancel:
    async def test_renewing_prefills_a_new_form_and_is_logged(self, api: Api, browsers: Browsers) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await api.prescribe(w))["code"]
        desk = await browser.get(f"/console/prescriber?renew={code.lower()}")
        prefill = page_json(desk.text, "console-page")["prefill"]
        assert prefill["mode"] == "renew" and prefill["source"] == code
        assert (
            prefill["patient"]["full_name"] == "Trần Thị Bình"
            and prefill["patient"]["date_of_birth"] == "1980-03-15"
        )
        assert prefill["diagnoses"] == [{"icd10": "J02.9", "text": "Viêm họng cấp"}]
        line = prefill["lines"][0]
        assert line["drug"]["registration_no"] == w.products["normal"].registration_no
        assert (line["quantity"], line["days_supply"]) == ("10", "5")
        assert 'id="prefill-note" data-mode="renew"' in desk.text
        assert "console_renew" in await access_actions(api, w, code)

    async def test_a_correction_replaces_the_old_prescription(self, api: Api, browsers: Browsers) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await api.prescribe(w))["code"]
        desk = await browser.get(f"/console/prescriber?replace={code}")
        assert page_json(desk.text, "console-page")["prefill"]["mode"] == "replace"
        jws = w.prescriber.sign(payload_for(w, replaces=code, notes="sửa liều"))
        sent = await browser.post_json(SUBMIT, {"jws": jws})
        assert sent.status_code == 201, sent.text
        old = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        assert old.json()["status"] == "replaced" and old.json()["replaced_by"] == sent.json()["code"]
        again = await browser.get(f"/console/prescriber?replace={code}")
        assert page_json(again.text, "console-page")["prefill"] is None
        assert 'id="prefill-error"' in again.text and "Đã được thay thế" in again.text

    async def test_cancelling_asks_first_then_cancels(self, api: Api, browsers: Browsers) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await api.prescribe(w))["code"]
        ask = await browser.get(f"/console/prescriber/prescriptions/{code}/cancel")
        assert ask.status_code == 200 and 'id="cancel-confirm"' in ask.text
        done = await browser.post_form(
            f"/console/prescriber/prescriptions/{code}/cancel", {"reason": "Kê nhầm"}
        )
        assert done.status_code == 303 and done.headers["location"].endswith("?done=cancelled")
        read = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        assert read.json()["status"] == "cancelled" and read.json()["cancel_reason"] == "Kê nhầm"
        twice = await browser.post_form(f"/console/prescriber/prescriptions/{code}/cancel", {"reason": "Lại"})
        assert twice.status_code == 409 and "Không hủy được" in twice.text

    async def test_the_paper_offers_the_actions_only_while_they_apply(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        code = (await api.prescribe(w))["code"]
        paper = await browser.get(f"/console/prescriber/prescriptions/{code}")
        assert 'data-action="renew"' in paper.text and 'data-action="replace"' in paper.text
        await browser.post_form(f"/console/prescriber/prescriptions/{code}/cancel", {"reason": "x"})
        cancelled = await browser.get(f"/console/prescriber/prescriptions/{code}")
        assert 'data-action="renew"' in cancelled.text and 'data-action="replace"' not in cancelled.text


class TestPaper:
    async def test_the_ordinary_form_is_complete(self, api: Api, browsers: Browsers) -> None:
        w, browser = await signed_in(api, browsers)
        created = (await browser.post_json(SUBMIT, {"jws": w.prescriber.sign(payload_for(w))})).json()
        paper = await browser.get(f"/console/prescriber/prescriptions/{created['code']}")
        html = paper.text
        assert "ĐƠN THUỐC</h1>" in html and 'data-kind="c"' in html
        assert f'<time datetime="{created["valid_until"]}" data-deadline>' in html
        assert re.search(r"<dd data-age>\d+ tuổi</dd>", html)
        assert "Số lượng: <strong>10 viên</strong>" in html
        assert "(Ký, ghi rõ họ tên)" in html and "Số CCHN:" in html
        # The second QR and a short address open the patient's own page.
        assert html.count('class="paper-qr') == 2
        assert f'data-patient-url="http://127.0.0.1:8000/rx/{created["code"]}?k=' in html
        assert f"127.0.0.1:8000/rx/{created['code']}</p>" in html

    async def test_the_narcotic_form_has_its_heading_identity_and_words(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        narcotic = w.products["narcotic"]
        code = (await api.prescribe(w, kind="n", items=[narcotic.line(quantity=21, days_supply=7)]))["code"]
        paper = await browser.get(f"/console/prescriber/prescriptions/{code}")
        html = paper.text
        assert "ĐƠN THUỐC “N”</h1>" in html and 'data-form="n"' in html
        assert '<dd class="mono" data-national-id>001180012345</dd>' in html
        assert "data-insurance-no>DN4010112345678</dd>" in html
        assert "21 (Hai mươi mốt)" in html and "Cộng khoản: 01 (Một) khoản." in html
        assert "người nhận thuốc" in html

    async def test_the_psychotropic_form_writes_quantities_in_words_too(
        self, api: Api, browsers: Browsers
    ) -> None:
        w, browser = await signed_in(api, browsers)
        psychotropic = w.products["psychotropic"]
        code = (await api.prescribe(w, kind="h", items=[psychotropic.line(quantity=105, days_supply=10)]))[
            "code"
        ]
        paper = await browser.get(f"/console/prescriber/prescriptions/{code}?lang=en")
        assert "PRESCRIPTION “H” (PSYCHOTROPIC)" in paper.text and "105 (One hundred and five)" in paper.text
        vi = await browser.get(f"/console/prescriber/prescriptions/{code}?lang=vi")
        assert "105 (Một trăm lẻ năm)" in vi.text and "data-national-id" not in vi.text

    async def test_the_prescribers_are_listed_by_given_name(self, api: Api, browsers: Browsers) -> None:
        w, browser = await signed_in(api, browsers)
        await api.prescriber([w.facility.facility_code])
        page = await browser.get("/console/prescriber/prescribers")
        names = re.findall(r'<span class="choice-name">([^<]+)</span>', page.text)
        assert len(names) == 3 and names == sorted(names, key=vietnamese_name_key)
