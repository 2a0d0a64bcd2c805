"""The three consoles end to end in Debian's headless Chromium, driven by Playwright.

A real uvicorn server runs in a thread on a free loopback port with an embedded database of its
own. The prescriber enrols a browser key (non-extractable, kept in IndexedDB), the health
department registers it through the admin API, the prescriber writes and signs a prescription in
the browser and prints it; the pharmacist scans the QR from a fake camera (frames decoded by the
server when Chromium has no BarcodeDetector), types the code, dispenses part of it and prints the
receipt; the patient opens the view with the date of birth and sees the rest and the basket.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests import browsing
from tests.browsing import Department, fake_camera, live_system
from tests.live import launch_chromium

PATIENT_DOB = "1985-06-20"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running server on its own SQLite database, with one admin client."""
    with live_system(tmp_path_factory.mktemp("consoles-browser")) as system:
        yield system.base


def shot(page: Page, name: str, **kwargs: Any) -> None:
    browsing.shot(page, f"consoles-{name}", **kwargs)


def launch(playwright: Any, *extra: str) -> Browser:
    browser: Browser = launch_chromium(playwright, *extra)
    return browser


def new_page(browser: Browser, **kwargs: Any) -> tuple[BrowserContext, Page]:
    context = browser.new_context(locale="vi-VN", **kwargs)
    page = context.new_page()
    page.set_default_timeout(15000)
    return context, page


def test_prescribe_dispense_and_patient_view_end_to_end(live: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=live, timeout=10) as http:
        _walk_through(Department(http), live, tmp_path)


def _walk_through(dept: Department, live: str, tmp_path: Path) -> None:
    http = dept.http
    facility = dept.post("/api/v1/facilities", {"name": "Phòng khám Đa khoa Hà Đông", "province_code": "01"})
    dept.drug("VD-11111-21", "Hapacol 500", "paracetamol", "500mg", "viên nén", "viên")
    dept.drug("VN-22222-22", "Panadol 500mg", "paracetamol", "500mg", "viên nén", "viên")
    dept.drug("VD-33333-23", "Amoxicillin 500mg", "amoxicillin", "500mg", "viên nang", "viên")
    dept.drug("VD-44444-24", "Seduxen 5mg", "diazepam", "5mg", "viên nén", "viên", "psychotropic")
    near = dept.pharmacy("Nhà thuốc Minh Châu", "01")
    other = dept.pharmacy("Nhà thuốc Hồng Hà", "01")
    dept.prices(
        near, [("VD-11111-21", 900, "viên"), ("VN-22222-22", 1500, "viên"), ("VD-33333-23", 2200, "viên")]
    )
    dept.prices(other, [("VD-11111-21", 700, "viên")])

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            code = _prescriber(browser, live, dept, facility)
        finally:
            browser.close()

        facility_token = dept.token(
            "/api/v1/auth/token", facility["facility_code"], facility["client_secret"]
        )
        png = http.get(
            f"/api/v1/prescriptions/{code}/qr.png", headers={"Authorization": f"Bearer {facility_token}"}
        )
        assert png.status_code == 200
        # The patient's own link, with the access key printed on the patient's part of the paper.
        read = http.get(
            f"/api/v1/prescriptions/{code}", headers={"Authorization": f"Bearer {facility_token}"}
        )
        patient_url = str(read.json()["patient_url"])
        video = fake_camera(png.content, tmp_path / "qr.y4m")
        browser = launch(
            playwright,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        )
        try:
            _pharmacist(browser, live, near, code)
            _patient(browser, live, code, patient_url)
        finally:
            browser.close()


def _prescriber(browser: Browser, live: str, dept: Department, facility: dict[str, Any]) -> str:
    context, page = new_page(browser)
    page.goto(f"{live}/console/prescriber")
    expect(page).to_have_url(f"{live}/console/prescriber/sign-in")
    page.fill("#client-id", facility["facility_code"])
    page.fill("#secret", facility["client_secret"])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live}/console/prescriber/prescribers")

    # Enrolment: a key created in the browser; only its public half is ever shown.
    page.goto(f"{live}/console/prescriber/enrol")
    page.click("#create-key")
    expect(page.locator("#new-key")).to_be_visible()
    public_jwk = json.loads(page.input_value("#public-jwk"))
    assert set(public_jwk) == {"kty", "crv", "x", "y"} and public_jwk["crv"] == "P-256"
    stored = page.evaluate(
        """async () => {
            const db = await new Promise((ok, fail) => {
              const r = indexedDB.open("erx-console"); r.onsuccess = () => ok(r.result); r.onerror = fail;
            });
            const all = await new Promise((ok) => {
              const r = db.transaction("signing-keys").objectStore("signing-keys").getAll(); r.onsuccess = () => ok(r.result);
            });
            const key = all[0].keyPair.privateKey;
            let exported = "exported";
            try { await crypto.subtle.exportKey("jwk", key); } catch (e) { exported = e.name; }
            return {count: all.length, extractable: key.extractable, type: key.type, exported};
        }"""
    )
    assert stored == {"count": 1, "extractable": False, "type": "private", "exported": "InvalidAccessError"}
    shot(page, "1-enrol")

    # The health department registers the public key.
    registered = dept.post(
        "/api/v1/prescribers",
        {
            "full_name": "BS. Nguyễn Thu Hà",
            "license_no": "001234/HNO-CCHN",
            "facility_codes": [facility["facility_code"]],
            "public_jwk": public_jwk,
            "controlled_allowed": True,
        },
    )
    prescriber_id = registered["prescriber_id"]
    page.goto(f"{live}/console/prescriber/prescribers")
    page.click(f"button[data-prescriber='{prescriber_id}']")
    expect(page).to_have_url(f"{live}/console/prescriber")
    expect(page.locator("form#rx-form")).to_have_attribute("data-ready", "true")

    # The patient; a child's date of birth asks for a guardian, as the rules say.
    page.fill("#p-full-name", "Lê Văn Tám")
    page.fill("#p-dob", "2024-01-10")
    expect(page.locator("#guardian")).to_be_visible()
    page.fill("#p-dob", PATIENT_DOB)
    expect(page.locator("#guardian")).to_be_hidden()
    page.select_option("#p-gender", "male")

    page.fill("#icd-search", "viem hong")
    page.locator("#icd-results [role=option]", has_text="J02.9").click()
    expect(page.locator('#diagnoses li[data-icd10="J02.9"]')).to_be_visible()

    page.fill("#drug-search", "hapacol")
    page.locator("#drug-results [role=option]", has_text="Hapacol 500").click()
    first = page.locator(".line").nth(0)
    first.locator("input[data-loc='items.0.quantity']").fill("20")
    first.locator("input[data-loc='items.0.days_supply']").fill("40")
    expect(page.locator("[data-error-for='items.0.days_supply']")).to_contain_text("30")
    first.locator("input[data-loc='items.0.days_supply']").fill("5")
    expect(page.locator("[data-error-for='items.0.days_supply']")).to_be_empty()
    first.locator("input[data-loc='items.0.instructions']").fill("Uống 1 viên khi sốt, cách 6 giờ")

    page.fill("#drug-search", "amoxi")
    page.locator("#drug-results [role=option]", has_text="Amoxicillin 500mg").click()
    second = page.locator(".line").nth(1)
    second.locator("input[data-loc='items.1.quantity']").fill("21")
    second.locator("input[data-loc='items.1.days_supply']").fill("7")
    second.locator("input[data-loc='items.1.instructions']").fill("Uống 1 viên x 3 lần/ngày")

    # A psychotropic makes a second kind: the form offers to split, one prescription per kind.
    page.fill("#drug-search", "seduxen")
    page.locator("#drug-results [role=option]", has_text="Seduxen").click()
    expect(page.locator("#split-offer")).to_be_visible()
    expect(page.locator("#sign-send")).to_contain_text("2")
    shot(page, "2-split-offer")
    page.locator(".line").nth(2).get_by_role("button").click()
    expect(page.locator("#split-offer")).to_be_hidden()

    page.click("#sign-send")
    created = page.locator("#result-list li[data-code]")
    expect(created).to_have_count(1)
    code = str(created.get_attribute("data-code"))
    assert len(code) == 14 and code.startswith(facility["facility_code"]) and code.endswith("-c")
    expect(page.locator(f'#recent tr[data-code="{code}"] [data-status="active"]')).to_be_visible()
    shot(page, "3-sent")

    # The A5 paper prescription: the QR as inline SVG and the code in large type.
    created.locator("a.result-code").click()
    # Two QR codes: the signed one for the pharmacy, and the patient's own page.
    expect(page.locator(".paper-qr svg path")).to_have_count(2)
    expect(page.locator(".paper-code")).to_have_text(code)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 560, "height": 794})  # A5 at 96 dpi
    expect(page.locator(".site-header")).to_be_hidden()
    shot(page, "4-print-a5")
    context.close()
    return code


def _pharmacist(browser: Browser, live: str, pharmacy: tuple[str, str], code: str) -> None:
    context, page = new_page(browser)
    context.grant_permissions(["camera"], origin=live)
    page.goto(f"{live}/console/pharmacy")
    page.fill("#client-id", pharmacy[0].lower())
    page.fill("#secret", pharmacy[1])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live}/console/pharmacy")

    # Scanning: Chromium's fake camera plays the QR; without BarcodeDetector the server decodes.
    page.click("#scan-start")
    scanned = page.locator(f'#prescription section[data-code="{code}"]')
    expect(scanned).to_be_visible(timeout=30000)
    expect(page.locator('[data-qr="verified"]')).to_be_visible()
    assert page.locator("#scan-video").get_attribute("data-decoder") in ("browser", "server")
    shot(page, "5-scanned")

    # Typing the code, in lower case, finds it too.
    page.goto(f"{live}/console/pharmacy")
    page.fill("#code-input", code.lower())
    page.click("#code-submit")
    expect(page.locator(f'#prescription section[data-code="{code}"]')).to_be_visible()
    # This pharmacy's own price is filled in for the product it lists cheapest.
    expect(page.locator("#price-1")).to_have_value("900")
    expect(page.locator("#product-1")).to_have_value("VD-11111-21")
    page.fill("#qty-1", "8")
    page.fill("#qty-2", "0")
    page.fill("#pharmacist-name", "DS. Phạm Thu Trang")
    page.fill("#pharmacist-licence", "005678/HNO-CCHND")
    expect(page.locator("#dispense-total")).to_contain_text("7.200")
    page.click("#dispense-submit")
    result = page.locator("#dispense-result")
    expect(result).to_be_visible()
    expect(page.locator('fieldset.line[data-line="1"] [data-remaining]')).to_have_text("12")
    shot(page, "6-dispensed")
    result.get_by_role("link").first.click()
    expect(page.locator("[data-total]")).to_contain_text("7.200")
    expect(page.locator("[data-receipt-no]")).to_be_visible()
    shot(page, "7-receipt")
    page.goto(f"{live}/console/pharmacy/dispenses")
    expect(page.locator("tr[data-dispense]")).to_have_count(1)
    context.close()


def _patient(browser: Browser, live: str, code: str, patient_url: str) -> None:
    # A phone, opening the link of the patient's QR.
    context, page = new_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{live}{urlsplit(patient_url).path}?{urlsplit(patient_url).query}")
    page.fill("#dob", "1985-06-21")
    page.click("button[type=submit]")
    expect(page.locator("#ask-error")).to_be_visible()
    page.fill("#dob", PATIENT_DOB)
    page.click("button[type=submit]")
    expect(page.locator("h1 [data-code]")).to_have_text(code)
    expect(page.locator('tr[data-line="1"] [data-remaining]')).to_have_text("12")
    expect(page.locator('tr[data-line="2"] [data-remaining]')).to_have_text("21")
    expect(page.locator("#dispensed")).to_contain_text("Nhà thuốc Minh Châu")
    offers = page.locator("#basket tr[data-outlet]")
    expect(offers).to_have_count(2)
    # The outlet listing both remaining lines comes first: 12 x 900 + 21 x 2,200.
    expect(offers.nth(0).locator("[data-total]")).to_have_attribute("data-total", str(12 * 900 + 21 * 2200))
    expect(offers.nth(1)).to_have_attribute("data-covered", "1")
    expect(page.locator('#access-log tr[data-actor-kind="pharmacy"]').first).to_be_visible()
    expect(page.locator('#access-log tr[data-actor-kind="facility"]').first).to_be_visible()
    shot(page, "8-patient-phone")
    page.locator('a[hreflang="en"]').first.click()
    expect(page.locator("#log-title")).to_have_text("Who has looked at it")
    shot(page, "9-patient-english")
    context.close()
