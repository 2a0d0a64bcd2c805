"""The doctor's day in Debian's headless Chromium: a session that ends mid-form and resumes after
signing in again in another tab, and a patient's earlier prescription found, written again,
printed (both QR codes read at 72 dpi) and cancelled. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.browsing import (
    Department,
    Live,
    enrol_in_browser,
    line,
    live_system,
    qr_texts,
    shot,
    sideways_overflow,
)
from tests.live import launch_chromium

pytestmark = pytest.mark.browser

PATIENT = {
    "full_name": "Trần Thị Bình",
    "date_of_birth": "1980-03-15",
    "gender": "female",
    "national_id": "001180012345",
    "insurance_no": "DN4010112345678",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_system(tmp_path_factory.mktemp("prescriber-browser")) as system:
        yield system


def signed_in_doctor(
    context: BrowserContext, live: Live, dept: Department, facility: dict[str, Any], license_no: str
) -> tuple[Page, str]:
    """Sign in as the facility, enrol this browser's key, have it registered, choose the doctor."""
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{live.base}/console/prescriber")
    page.fill("#client-id", facility["facility_code"])
    page.fill("#secret", facility["client_secret"])
    page.click("button[type=submit]")
    page.wait_for_url("**/console/prescriber/prescribers")
    jwk = enrol_in_browser(page, live.base)
    registered = dept.post(
        "/api/v1/prescribers",
        {
            "full_name": "BS. Nguyễn Thu Hà",
            "license_no": license_no,
            "facility_codes": [facility["facility_code"]],
            "public_jwk": jwk,
            "controlled_allowed": False,
        },
    )
    prescriber_id = str(registered["prescriber_id"])
    page.goto(f"{live.base}/console/prescriber/prescribers")
    page.click(f"button[data-prescriber='{prescriber_id}']")
    expect(page.locator("form#rx-form")).to_have_attribute("data-ready", "true")
    return page, prescriber_id


def test_a_session_that_ends_mid_form_resumes_after_signing_in_again(live: Live) -> None:
    with httpx.Client(base_url=live.base, timeout=10) as http, sync_playwright() as playwright:
        dept = Department(http)
        facility = dept.facility("Phòng khám Đa khoa Hà Đông")
        dept.drug("VD-11111-21", "Hapacol 500", "paracetamol", "500mg", "viên nén", "viên")
        browser = launch_chromium(playwright)
        try:
            # An English-language browser in another time zone: the page stays Vietnamese, day first.
            context = browser.new_context(locale="en-US", timezone_id="America/New_York")
            page, prescriber_id = signed_in_doctor(context, live, dept, facility, "001111/HNO-CCHN")
            expect(page.locator("html")).to_have_attribute("lang", "vi")
            page.fill("#p-full-name", "Lê Văn Tám")
            page.fill("#p-dob", "20/06/1985")
            expect(page.locator("#p-age")).to_have_text(re.compile(r"^20/06/1985 · \d+ tuổi$"))
            page.select_option("#p-gender", "male")
            page.fill("#icd-search", "viem hong")
            page.locator("#icd-results [role=option]", has_text="J02.9").click()
            page.fill("#drug-search", "hapacol")
            page.locator("#drug-results [role=option]", has_text="Hapacol 500").click()
            page.fill("input[data-loc='items.0.quantity']", "20")
            page.fill("input[data-loc='items.0.days_supply']", "5")
            page.fill("input[data-loc='items.0.instructions']", "Uống 1 viên khi sốt, cách 6 giờ")
            expect(page.locator("#kind-summary")).to_contain_text("Đơn thông thường")
            expect(page.locator("#kind-summary")).not_to_contain_text("(c)")

            # Thirty idle minutes later the session is gone (here: ended on the server at once).
            live.sql("DELETE FROM web_session")
            page.click("#sign-send")
            note = page.locator("#session-note")
            expect(note).to_be_visible()
            expect(note).to_contain_text("Phiên làm việc đã hết")
            expect(page.locator("#form-errors")).to_contain_text("Chưa gửi được đơn")
            shot(page, "prescriber-1-session-ended")

            # Signing in again in another tab: that desk opens with what was typed.
            with context.expect_page() as opened:
                note.locator("a[data-sign-in]").click()
            tab = opened.value
            tab.set_default_timeout(15000)
            tab.fill("#client-id", facility["facility_code"])
            tab.fill("#secret", facility["client_secret"])
            tab.click("button[type=submit]")
            chooser = tab.locator(f"button[data-prescriber='{prescriber_id}']")
            expect(chooser.locator("[data-draft]")).to_be_visible()
            chooser.click()
            expect(tab.locator("#p-full-name")).to_have_value("Lê Văn Tám")
            expect(tab.locator("#draft-note")).to_be_visible()
            expect(tab.locator("input[data-loc='items.0.quantity']")).to_have_value("20")
            shot(tab, "prescriber-2-resumed-in-new-tab")

            # Back in the first tab, which carries on with the new session.
            page.bring_to_front()
            page.evaluate("window.dispatchEvent(new Event('focus'))")
            expect(page.locator("#session-note[data-resumed]")).to_be_visible()
            page.click("#sign-send")
            created = page.locator("#result-list li[data-code]")
            expect(created).to_have_count(1)
            expect(created.locator("[data-valid-until]")).to_have_text(
                re.compile(r"hạn lấy thuốc đến hết ngày \d{2}/\d{2}/\d{4} \(23:59:59\)")
            )
            shot(page, "prescriber-3-sent-after-resume")

            # Sent: nothing is kept any more.
            tab.reload()
            expect(tab.locator("#p-full-name")).to_have_value("")
            expect(tab.locator("#draft-note")).to_be_hidden()
            context.close()
        finally:
            browser.close()


def test_an_earlier_prescription_found_written_again_printed_and_cancelled(live: Live) -> None:
    with httpx.Client(base_url=live.base, timeout=10) as http, sync_playwright() as playwright:
        dept = Department(http)
        facility = dept.facility("Bệnh viện Đa khoa Đức Giang")
        dept.drug("VD-33333-23", "Amoxicillin 500mg", "amoxicillin", "500mg", "viên nang", "viên")
        hospital_doctor = dept.prescriber(facility["facility_code"], "BS. Phạm Văn Đức")
        earlier = dept.prescribe(
            facility, hospital_doctor, PATIENT, [line("amoxicillin", "500mg", "viên nang", 21)]
        )
        browser = launch_chromium(playwright)
        try:
            # A page in English, in an English-language browser.
            context = browser.new_context(locale="en-US")
            page, _ = signed_in_doctor(context, live, dept, facility, "001234/HNO-CCHN")
            page.goto(f"{live.base}/console/prescriber/patients?lang=en")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            page.check("input[name=by][value=national_id]")
            page.fill("#s-national-id", "001180012345")
            page.get_by_role("button", name="Search").click()
            found = page.locator(f'#patient-results tr[data-code="{earlier["code"]}"]')
            expect(found).to_be_visible()
            shot(page, "prescriber-4-earlier-prescriptions-en")

            found.locator("a[data-action=renew]").click()
            expect(page.locator("#prefill-note")).to_contain_text(earlier["code"])
            expect(page.locator("#p-full-name")).to_have_value("Trần Thị Bình")
            expect(page.locator("#p-dob")).to_have_value("15/03/1980")
            expect(page.locator("input[data-loc='items.0.quantity']")).to_have_value("21")
            page.click("#sign-send")
            created = page.locator("#result-list li[data-code]")
            expect(created).to_have_count(1)
            code = str(created.get_attribute("data-code"))
            assert code != earlier["code"]

            created.locator("a.result-code").click()
            expect(page.locator(".paper-code")).to_have_text(code)
            expect(page.locator("[data-age]")).to_have_text(re.compile(r"^\d+ years old$"))
            expect(page.locator("[data-licence]")).to_contain_text("001234/HNO-CCHN")
            # The A5 paper at 96 dpi, then read as a 72 dpi scan: both QR codes decode.
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 560, "height": 794})
            paper = shot(page, "prescriber-5-paper-a5-en")
            for scale in (1.0, 0.75):
                read = qr_texts(paper, scale)
                assert any(text.startswith(f"{code}.") for text in read), (scale, read)
                assert any(f"/rx/{code}?k=" in text for text in read), (scale, read)
            page.emulate_media(media="screen")

            # Cancelled from the console, with a confirmation first.
            page.set_viewport_size({"width": 360, "height": 740})
            page.click("a[data-action=cancel]")
            assert sideways_overflow(page) == 0
            page.fill("#cancel-reason", "Wrong patient")
            page.click("#cancel-confirm")
            expect(page.locator("[data-status=cancelled]")).to_be_visible()
            expect(page.locator("a[data-action=replace]")).to_have_count(0)
            assert sideways_overflow(page) == 0
            shot(page, "prescriber-6-cancelled-phone-en")
            context.close()
        finally:
            browser.close()
