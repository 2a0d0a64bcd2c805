"""The portal in real headless Chromium (Debian's package, driven by Playwright).

A real uvicorn server runs in a thread on a free loopback port, on the test settings and an
embedded database of its own, with the demo catalogue and seeded listings. The browser searches
without diacritics, opens a product, sees the server-drawn chart, switches to English, and
leaves a screenshot in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from erx.demo.prices import seed_prices
from erx.migrate import upgrade
from kit.runtime import Runtime
from tests.conftest import make_settings
from tests.live import ARTIFACTS, launch_chromium, live_server


@pytest.fixture(scope="module")
def live_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running server with the demo catalogue and a few hundred listings."""
    settings = make_settings(tmp_path_factory.mktemp("browser"), None)
    upgrade(settings)

    async def prepare() -> None:
        runtime = Runtime.build(settings)
        try:
            await seed_prices(runtime, outlets=12, rows=1500, seed=11)
        finally:
            await runtime.database.dispose()

    asyncio.run(prepare())
    with live_server(settings) as base:
        yield base


@pytest.mark.browser
def test_search_open_product_see_chart_switch_language(live_portal: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_portal) else None)
            failures: list[str] = []
            page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)

            page.goto(live_portal + "/")
            expect(page.locator("html")).to_have_attribute("lang", "vi")
            # Typed without diacritics; the catalogue says "Thuốc ho Bảo Thanh".
            page.get_by_label("Tên thuốc, hoạt chất hoặc số đăng ký").fill("thuoc ho bao thanh")
            page.get_by_role("button", name="Tìm giá").click()
            page.wait_for_url("**/search?**")
            expect(page.locator("h1")).to_contain_text("thuoc ho bao thanh")
            product_link = page.locator(".product-card h3 a", has_text="Thuốc ho Bảo Thanh")
            expect(product_link).to_be_visible()
            expect(page.locator("table.prices tbody tr").first).to_be_visible()

            product_link.click()
            page.wait_for_url("**/products/**")
            expect(page.locator("h1")).to_have_text("Thuốc ho Bảo Thanh")
            chart = page.locator("svg.chart")
            expect(chart).to_be_visible()
            expect(chart.locator("polyline.chart-median")).to_have_count(1)
            expect(page.locator("[data-stat=outlets]")).not_to_have_text("0")
            # Keyboard users reach the search box through the skip link and the header.
            page.keyboard.press("Tab")
            expect(page.locator(".skip-link")).to_be_focused()

            page.get_by_role("link", name="English").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.get_by_role("heading", name="Market prices")).to_be_visible()
            expect(chart).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "portal-product.png"), full_page=True)

            # The choice is remembered for the next page.
            page.get_by_role("link", name="Search prices").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            assert outside == [], outside
            assert failures == [], failures
        finally:
            browser.close()
