"""The citizen's kitchen table in Debian's headless Chromium, on a phone: a search, every matching
product ("and N more products" opens them), one product; then their own prescription opened from the
home page's box, in Vietnamese and, in an English-language browser, in English. Nothing scrolls
sideways at 360 px. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from erx.demo.prices import seed_prices
from kit.runtime import Runtime
from tests.browsing import Department, Live, line, live_system, shot, sideways_overflow
from tests.live import launch_chromium

pytestmark = pytest.mark.browser

PATIENT = {"full_name": "Phạm Thị Mai", "date_of_birth": "1990-04-30", "gender": "female"}
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The demo catalogue and a few hundred listings, on a system of its own."""

    async def listings(runtime: Runtime) -> None:
        await seed_prices(runtime, outlets=8, rows=600, seed=7)

    with live_system(tmp_path_factory.mktemp("citizen-browser"), listings) as system:
        yield system


def no_sideways(page: Page) -> None:
    assert sideways_overflow(page) == 0, page.url


def test_search_every_product_one_product_and_the_own_prescription(live: Live) -> None:
    with httpx.Client(base_url=live.base, timeout=10) as http, sync_playwright() as playwright:
        dept = Department(http)
        facility = dept.facility("Trạm Y tế phường Láng Thượng")
        doctor = dept.prescriber(facility["facility_code"], "BS. Đỗ Minh Châu")
        code = dept.prescribe(facility, doctor, PATIENT, [line("paracetamol", "500mg", "viên nén", 12)])[
            "code"
        ]
        # The access key printed on the patient's part of the paper, as the facility reads it.
        token = dept.token("/api/v1/auth/token", facility["facility_code"], facility["client_secret"])
        read = dept.http.get(f"/api/v1/prescriptions/{code}", headers={"Authorization": f"Bearer {token}"})
        access_key = str(read.json()["patient_access_key"])
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(locale="vi-VN", **PHONE)
            page = context.new_page()
            page.set_default_timeout(15000)
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live.base) else None)
            page.goto(f"{live.base}/")
            no_sideways(page)
            # The search box first; the four filters wait folded.
            expect(page.locator("details.filters-box")).not_to_have_attribute("open", "")
            expect(page.locator("#province")).to_be_hidden()
            shot(page, "citizen-1-home-phone")

            page.fill("#q", "paracetamol")
            page.locator("#q").press("Enter")
            page.wait_for_url("**/search?**")
            expect(page.locator(".product-card").first).to_be_visible()
            no_sideways(page)
            more = page.locator("a[data-more-products]")
            expect(more).to_have_text(re.compile(r"Xem cả \d+ sản phẩm khác"))
            shot(page, "citizen-2-search-phone")
            more.click()
            page.wait_for_url("**/products?**")
            expect(page.locator("#products-heading")).to_contain_text("paracetamol")
            assert page.locator(".product-card").count() > 6
            no_sideways(page)
            page.locator(".product-card h2 a").first.click()
            page.wait_for_url(re.compile(r".*/products/[^?]+$"))
            expect(page.locator("svg.chart, .product-stats, h1").first).to_be_visible()
            no_sideways(page)
            shot(page, "citizen-3-product-phone")

            # The patient's own page, from the box on the home page.
            page.goto(f"{live.base}/")
            page.fill("#rx-code", code.lower())
            page.locator("#rx-code").press("Enter")
            page.wait_for_url(f"**/rx/{code}")
            page.fill("#dob", "30/04/1990")
            page.fill("#access-key", access_key)
            page.click("button[type=submit]")
            expect(page.locator("h1 [data-code]")).to_have_text(code)
            expect(page.locator("[data-valid-until]")).to_have_text(
                re.compile(r"đến hết ngày \d{2}/\d{2}/\d{4} \(23:59:59\)")
            )
            expect(page.locator('tr[data-line="1"] [data-remaining]')).to_have_text("12")
            no_sideways(page)
            shot(page, "citizen-4-own-prescription-phone")
            assert outside == [], outside
            context.close()

            # An English-language browser reading the page in English: still day first.
            context = browser.new_context(locale="en-US", **PHONE)
            page = context.new_page()
            page.set_default_timeout(15000)
            page.goto(f"{live.base}/rx?lang=en")
            page.fill("#rx-code", code)
            page.click("button[type=submit]")
            page.fill("#dob", "30/04/1990")
            page.fill("#access-key", access_key)
            page.click("button[type=submit]")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.locator("#log-title")).to_have_text("Who has looked at it")
            expect(page.locator("[data-valid-until]")).to_have_text(
                re.compile(r"until the end of \d{2}/\d{2}/\d{4} \(23:59:59\)")
            )
            expect(page.locator('tr[data-line="1"]')).to_contain_text("12 tablet")
            # The page is minimised: initials, no date of birth (the patient typed it).
            expect(page.locator("dl.facts-grid")).not_to_contain_text("30/04/1990")
            no_sideways(page)
            shot(page, "citizen-5-own-prescription-english")
            context.close()
        finally:
            browser.close()
