"""The counter over HTTP: the form is not re-armed after a sale, receipts carry a short number and
come in two layouts, the day's sales add up and export, voids are confirmed, price lists explained."""

from __future__ import annotations

import csv
import io
import re
import unicodedata

import pytest
from sqlalchemy import text

from tests.clients import Browser, Browsers
from tests.conftest import Harness, HarnessFactory
from tests.downloads import HeldDownload
from tests.factories import Api, World
from tests.pharmacy_gateway.console.test_console import LOOKUP, counter, publish, sell

QUANTITY = re.compile(r'name="quantity"[^>]*value="(\d+)"')
TONES = "\u0300\u0301\u0303\u0309\u0323"


def windows_1258(text: str) -> bytes:
    """What a spreadsheet on a Vietnamese Windows saves: letters precomposed, tones as combining marks."""
    out = []
    for char in text:
        parts = unicodedata.normalize("NFD", char)
        letter = unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONES))
        out.append(letter + "".join(c for c in parts if c in TONES))
    return "".join(out).encode("cp1258")


async def sold(browser: Browser, w: World, code: str, quantity: int, **extra: object) -> dict[str, str]:
    product = w.products["normal"]
    r = await sell(
        browser,
        code,
        [{"line_no": 1, "registration_no": product.registration_no, "quantity": quantity, **extra}],
    )
    assert r.status_code == 201, r.text
    answer: dict[str, str] = r.json()
    return answer


class TestReArming:
    async def test_after_a_sale_the_prescription_is_shown_without_its_form(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        await sold(browser, w, code, 4, unit_price=1000)
        shown = await browser.post_json(LOOKUP, {"text": code, "armed": False})
        assert shown.status_code == 200
        assert 'data-armed="false"' in shown.text
        assert 'name="quantity"' not in shown.text and 'id="dispense-submit"' not in shown.text
        assert 'id="rearm"' in shown.text and 'data-remaining="6"' in shown.text

    async def test_a_deliberate_step_re_arms_it_without_prefilling_a_part_sold_line(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        fresh = await browser.post_json(LOOKUP, {"text": code})
        # Nothing sold yet: the whole line is offered.
        assert QUANTITY.findall(fresh.text) == ["10"]
        await sold(browser, w, code, 4, unit_price=1000)
        again = await browser.post_json(LOOKUP, {"text": code, "armed": True})
        assert 'data-armed="true"' in again.text and 'data-max="6"' in again.text
        # Part of it was sold: the pharmacist types how much more.
        assert QUANTITY.findall(again.text) == ["0"]


class TestReceipts:
    async def test_a_sale_answers_its_short_number_and_both_layouts(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        answer = await sold(browser, w, code, 2, unit_price=1500)
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", answer["receipt_no"])
        a5 = await browser.get(answer["receipt_url"])
        assert f'<strong class="mono" data-receipt-no>{answer["receipt_no"]}</strong>' in a5.text
        assert 'data-layout="a5"' in a5.text and "<strong data-total>3.000 ₫</strong>" in a5.text
        roll = await browser.get(answer["receipt_roll_url"])
        assert roll.status_code == 200 and 'data-layout="roll"' in roll.text

    async def test_a_sale_without_a_unit_price_says_so_plainly(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        answer = await sold(browser, w, code, 2)
        receipt = await browser.get(answer["receipt_url"])
        assert "Không ghi đơn giá" in receipt.text and "data-unpriced" in receipt.text
        assert "<strong data-total>Không tính được</strong>" in receipt.text

    async def test_the_history_api_carries_the_same_short_number(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        pharmacy, browser = await counter(api, browsers)
        answer = await sold(browser, w, code, 1, unit_price=900)
        history = await api.client.get("/gateway/v1/dispenses", headers=pharmacy.headers)
        assert history.json()["items"][0]["receipt_no"] == answer["receipt_no"]


class TestDaySales:
    async def test_the_day_adds_up_and_voided_sales_count_apart(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        first = (await api.prescribe(w, notes="a"))["code"]
        second = (await api.prescribe(w, notes="b"))["code"]
        _, browser = await counter(api, browsers)
        kept = await sold(browser, w, first, 3, unit_price=1500)
        dropped = await sold(browser, w, second, 2, unit_price=1000)
        voided = await browser.post_form(
            f"/console/pharmacy/dispenses/{dropped['dispense_id']}/void", {"reason": "Nhầm đơn"}
        )
        assert voided.status_code == 303
        day = await browser.get("/console/pharmacy/dispenses")
        assert day.status_code == 200
        assert '<dd data-total="sales">1</dd>' in day.text and '<dd data-total="units">3</dd>' in day.text
        assert (
            '<dd data-total="revenue">4.500 ₫</dd>' in day.text
            and '<dd data-total="voided">1</dd>' in day.text
        )
        assert f'data-receipt-no="{kept["receipt_no"]}"' in day.text

    async def test_another_day_and_an_unreadable_day(self, api: Api, browsers: Browsers) -> None:
        _, browser = await counter(api, browsers)
        past = await browser.get("/console/pharmacy/dispenses?from=01/01/2020")
        assert past.status_code == 200 and "Bán hàng ngày 01/01/2020" in past.text
        assert "Không có lần bán nào" in past.text
        wrong = await browser.get("/console/pharmacy/dispenses?from=32/13/2020")
        assert wrong.status_code == 422 and 'id="sales-error"' in wrong.text

    async def test_the_export_has_one_row_per_line_sold(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        answer = await sold(browser, w, code, 3, unit_price=1500, batch_no="L7")
        exported = await browser.get("/console/pharmacy/dispenses.csv")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert rows[0][:3] == ["Thời điểm", "Số hóa đơn", "Mã đơn thuốc"]
        assert rows[1][1:3] == [answer["receipt_no"], code] and rows[1][5:9] == ["3", "1500", "4500", "L7"]

    async def test_a_receipt_number_opens_its_receipt_only_at_its_own_outlet(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        answer = await sold(browser, w, code, 1, unit_price=700)
        typed = answer["receipt_no"].lower().replace("-", "")
        found = await browser.client.get(f"/console/pharmacy/dispenses?receipt={typed}")
        assert found.status_code == 303 and found.headers["location"] == answer["receipt_url"]
        _, other = await counter(api, browsers)
        missing = await other.get(f"/console/pharmacy/dispenses?receipt={typed}")
        assert missing.status_code == 200 and "Không có hóa đơn số" in missing.text


class TestVoidConfirmation:
    async def test_the_void_is_confirmed_on_its_own_page_first(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        answer = await sold(browser, w, code, 2, unit_price=1000)
        listing = await browser.get("/console/pharmacy/dispenses")
        assert f'href="/console/pharmacy/dispenses/{answer["dispense_id"]}/void" data-void' in listing.text
        # The list itself holds no void form: voiding is a page and a confirmation away.
        assert 'name="reason"' not in listing.text
        ask = await browser.get(f"/console/pharmacy/dispenses/{answer['dispense_id']}/void")
        assert ask.status_code == 200 and 'id="void-confirm"' in ask.text and 'name="reason"' in ask.text
        done = await browser.post_form(
            f"/console/pharmacy/dispenses/{answer['dispense_id']}/void", {"reason": "Trả lại"}
        )
        assert done.status_code == 303
        twice = await browser.post_form(
            f"/console/pharmacy/dispenses/{answer['dispense_id']}/void", {"reason": "Lần nữa"}
        )
        assert twice.status_code == 409 and "đã được hủy trước đó" in twice.text
        assert "already voided" not in twice.text

    async def test_outside_the_window_there_is_no_form(self, tuned: Harness, browsers: Browsers) -> None:
        api = tuned.api
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        found = Browsers(tuned.app, [])
        try:
            _, browser = await counter(api, found)
            answer = await sold(browser, w, code, 1, unit_price=1000)
            ask = await browser.get(f"/console/pharmacy/dispenses/{answer['dispense_id']}/void")
            assert 'id="void-confirm"' not in ask.text and "đã quá hạn" in ask.text
        finally:
            for opened in found.opened:
                await opened.close()


class TestPriceList:
    async def test_the_page_shows_what_is_listed_and_the_template_holds_it(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        product = w.products["normal"]
        pharmacy, browser = await counter(api, browsers)
        await publish(api, pharmacy, (product.registration_no, 1450, product.unit))
        page = await browser.get("/console/pharmacy/prices")
        assert f'data-listed="{product.registration_no}"' in page.text and "1.450 ₫" in page.text
        template = await browser.get("/console/pharmacy/prices/template.csv")
        rows = list(csv.reader(io.StringIO(template.content.decode("utf-8-sig"))))
        assert rows[0] == ["Số đăng ký", "Tên sản phẩm", "Giá", "Đơn vị"]
        assert rows[1] == [product.registration_no, product.name, "1450", product.unit]

    async def test_the_template_uploads_back_with_vietnamese_prices(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        product = w.products["normal"]
        _, browser = await counter(api, browsers)
        text = f"Số đăng ký;Tên sản phẩm;Giá;Đơn vị\r\n{product.registration_no};{product.name};1.500;{product.unit}\r\n"
        uploaded = await browser.client.post(
            "/console/pharmacy/prices",
            data={"csrf_token": browser.csrf},
            files={"file": ("gia.csv", windows_1258(text), "text/csv")},
        )
        assert uploaded.status_code == 200, uploaded.text
        listed = await api.client.get(f"/portal/api/v1/drugs/{product.registration_no}")
        assert listed.json()["stats"]["min"] == 1500

    async def test_each_refused_row_is_explained_in_vietnamese(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        _, browser = await counter(api, browsers)
        text = (
            "registration_no,price,unit\n"
            f"{product.registration_no},abc,{product.unit}\n"
            f"{product.registration_no}x,900,{product.unit}\n"
        )
        refused = await browser.client.post(
            "/console/pharmacy/prices",
            data={"csrf_token": browser.csrf},
            files={"file": ("gia.csv", text.encode(), "text/csv")},
        )
        assert refused.status_code == 422
        assert "Dòng 2, Giá: Cần một số nguyên." in refused.text
        assert "Dòng 3, Số đăng ký: Không có sản phẩm này trong danh mục thuốc quốc gia." in refused.text
        assert "Input should be" not in refused.text and "national catalogue" not in refused.text
        header = await browser.client.post(
            "/console/pharmacy/prices",
            data={"csrf_token": browser.csrf},
            files={"file": ("gia.csv", b"a,b\n1,2\n", "text/csv")},
        )
        assert "Dòng tiêu đề thiếu cột: registration_no, price, unit" in header.text


@pytest.mark.postgres_only
class TestASlowReader:
    async def test_of_either_export_holds_no_connection_while_it_stays_open(
        self, make_harness: HarnessFactory
    ) -> None:
        # A pool of one connection for the app: the setting's least (which allows as many again
        # under bursts), less the one this test holds throughout. Past 2 s without one, a 503.
        harness = await make_harness("postgresql", database_pool_size=1, database_pool_timeout_seconds=2)
        api = harness.api
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        browsers = Browsers(harness.app, [])
        try:
            pharmacy, browser = await counter(api, browsers)
            await sold(browser, w, code, 3, unit_price=1500)
            product = w.products["normal"]
            await publish(api, pharmacy, (product.registration_no, 1450, product.unit))
            cookies = "; ".join(f"{c.name}={c.value}" for c in browser.client.cookies.jar)
            exports = {
                "/console/pharmacy/dispenses.csv": code,
                "/console/pharmacy/prices/template.csv": "1450",
            }
            async with harness.runtime.database.engine.connect() as ballast:
                await ballast.execute(text("SELECT 1"))
                for path, expected in exports.items():
                    download = HeldDownload(
                        harness.app, path, headers={"cookie": cookies}, address=browser.address
                    )
                    first = await download.open()
                    assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
                    assert first.startswith("\ufeff".encode())
                    # The reader has the first chunk and reads no further; the one connection is free.
                    page = await browser.get("/console/pharmacy/dispenses")
                    assert page.status_code == 200 and code in page.text
                    body = (await download.finish()).decode("utf-8-sig")
                    assert expected in body
        finally:
            for opened in browsers.opened:
                await opened.close()
