"""The pharmacist's day in Debian's headless Chromium: a USB scanner types the QR text, mistakes are
caught before sending, a large sale is read back, the form is not re-armed after the sale, the
receipt prints in A5 and on an 80 mm roll, a void is confirmed, and the day's sales add up and
export. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browsing import Department, Live, line, live_system, shot, sideways_overflow
from tests.live import launch_chromium

pytestmark = pytest.mark.browser

PATIENT = {"full_name": "Nguyễn Văn An", "date_of_birth": "1984-05-12", "gender": "male"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_system(tmp_path_factory.mktemp("counter-browser")) as system:
        yield system


def test_a_sale_at_the_counter_from_scan_to_the_days_takings(live: Live) -> None:
    with httpx.Client(base_url=live.base, timeout=10) as http, sync_playwright() as playwright:
        dept = Department(http)
        facility = dept.facility("Bệnh viện Bạch Mai")
        dept.drug("VD-32666-21", "Amoxycilin 500mg Mekophar", "amoxicillin", "500mg", "viên nang", "viên")
        dept.drug("VD-17225-14", "Biragan 500", "paracetamol", "500mg", "viên nén", "viên")
        doctor = dept.prescriber(facility["facility_code"], "BS. Nguyễn Thị Lan")
        created = dept.prescribe(
            facility,
            doctor,
            PATIENT,
            [line("amoxicillin", "500mg", "viên nang", 150), line("paracetamol", "500mg", "viên nén", 10)],
        )
        code = created["code"]
        token = dept.token("/api/v1/auth/token", facility["facility_code"], facility["client_secret"])
        qr_text = http.get(
            f"/api/v1/prescriptions/{code}", headers={"Authorization": f"Bearer {token}"}
        ).json()["qr_text"]
        pharmacy = dept.pharmacy("Nhà thuốc Minh Châu", "01")
        dept.prices(pharmacy, [("VD-32666-21", 700, "viên"), ("VD-17225-14", 500, "viên")])

        browser = launch_chromium(playwright)
        try:
            # An English-language browser at a Vietnamese counter.
            context = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15000)
            page.goto(f"{live.base}/console/pharmacy")
            page.fill("#client-id", pharmacy[0])
            page.fill("#secret", pharmacy[1])
            page.click("button[type=submit]")
            expect(page.locator("#code-input")).to_be_focused()

            # A USB scanner is a keyboard: it types the whole QR text and presses Enter.
            page.keyboard.type(qr_text)
            page.keyboard.press("Enter")
            expect(page.locator(f'#prescription section[data-code="{code}"]')).to_be_visible()
            expect(page.locator('[data-qr="verified"]')).to_be_visible()
            expect(page.locator("#code-input")).to_have_value("")
            expect(page.locator("[data-valid-until]")).to_have_text(
                re.compile(r"đến hết ngày \d{2}/\d{2}/\d{4} \(23:59:59\)")
            )

            # What a person can get wrong is said before anything is sent, in Vietnamese.
            page.fill("#qty-1", "999")
            page.fill("#price-1", "")
            page.fill("#expiry-1", "01/2020")
            page.fill("#qty-2", "0")
            page.fill("#pharmacist-name", "DS. Phạm Thu Trang")
            page.fill("#pharmacist-licence", "005678/HNO-CCHND")
            page.click("#dispense-submit")
            errors = page.locator("#dispense-errors")
            expect(errors).to_contain_text("Dòng 1: Tối đa 150")
            expect(errors).to_contain_text("Nhập đơn giá bán")
            expect(errors).to_contain_text("Lô này đã hết hạn dùng")
            expect(page.locator("#line-error-1")).to_contain_text("Tối đa 150")
            expect(page.locator("#expiry-1")).to_have_attribute("aria-invalid", "true")
            shot(page, "counter-1-caught-before-sending")

            # Prices the Vietnamese way; 120 units is a large sale, read back before it goes.
            page.fill("#qty-1", "120")
            page.fill("#price-1", "1.500")
            page.fill("#expiry-1", "12/2030")
            expect(page.locator("#dispense-total")).to_have_text("180.000 ₫")
            page.click("#dispense-submit")
            confirm = page.locator("#dispense-confirm")
            expect(confirm).to_be_visible()
            expect(confirm).to_contain_text("180.000 ₫")
            expect(page.locator("#confirm-yes")).to_be_focused()
            shot(page, "counter-2-large-sale-read-back")
            page.click("#confirm-yes")

            result = page.locator("#dispense-result")
            expect(result).to_be_visible()
            receipt_no = str(result.locator("[data-receipt-no]").get_attribute("data-receipt-no"))
            assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", receipt_no)
            # Not re-armed: what remains is shown without a form, and the field waits for the next scan.
            expect(page.locator('section[data-armed="false"]')).to_be_visible()
            expect(page.locator('fieldset.line[data-line="1"] [data-remaining]')).to_have_text("30")
            expect(page.locator("#qty-1")).to_have_count(0)
            expect(page.locator("#code-input")).to_be_focused()
            shot(page, "counter-3-sold-not-rearmed")
            page.click("#rearm")
            expect(page.locator("#qty-1")).to_have_value("0")
            expect(page.locator("#qty-2")).to_have_value("10")
            # The focus is on the prescription's heading: the next scan still lands in the code field.
            expect(page.locator("#rx-title")).to_be_focused()
            page.keyboard.type(code.lower())
            expect(page.locator("#code-input")).to_have_value(code.lower())
            page.keyboard.press("Enter")
            expect(page.locator('section[data-armed="true"]')).to_be_visible()

            # The receipt, A5 and on an 80 mm roll.
            page.goto(f"{live.base}/console/pharmacy/dispenses")
            row = page.locator(f'tr[data-receipt-no="{receipt_no}"]')
            expect(row).to_contain_text("180.000 ₫")
            row.get_by_role("link", name="Hóa đơn A5").click()
            expect(page.locator("[data-receipt-no]")).to_have_text(receipt_no)
            expect(page.locator("[data-total]")).to_have_text("180.000 ₫")
            page.emulate_media(media="print")
            shot(page, "counter-4-receipt-a5")
            page.emulate_media(media="screen")
            page.goto(f"{live.base}/console/pharmacy/dispenses")
            page.locator(f'tr[data-receipt-no="{receipt_no}"]').get_by_role("link", name="80 mm").click()
            expect(page.locator("article.receipt-roll")).to_be_visible()
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 302, "height": 900})  # 80 mm at 96 dpi
            shot(page, "counter-5-receipt-80mm")
            assert sideways_overflow(page) == 0
            page.emulate_media(media="screen")
            page.set_viewport_size({"width": 1100, "height": 900})

            # The day's sales, their totals and their export.
            page.goto(f"{live.base}/console/pharmacy/dispenses")
            expect(page.locator("#dispenses-title")).to_have_text(
                re.compile(r"Bán hàng ngày \d{2}/\d{2}/\d{4}")
            )
            expect(page.locator('[data-total="revenue"]')).to_have_text("180.000 ₫")
            with page.expect_download() as download:
                page.click("a[data-export]")
            rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
            assert rows[1][1:3] == [receipt_no, code] and rows[1][5:8] == ["120", "1500", "180000"]

            # A void is asked for on a page of its own, with its reason, then confirmed.
            page.locator(f'tr[data-receipt-no="{receipt_no}"] a[data-void]').click()
            expect(page.locator("#void-title")).to_contain_text(receipt_no)
            page.fill("#void-reason", "Nhập sai số lượng")
            page.click("#void-confirm")
            expect(page.locator(f'tr[data-receipt-no="{receipt_no}"] [data-voided="true"]')).to_be_visible()
            expect(page.locator('[data-total="revenue"]')).to_have_text("0 ₫")
            expect(page.locator('[data-total="voided"]')).to_have_text("1")
            shot(page, "counter-6-days-sales-after-void")

            # The price list: what is listed now, and an upload explained row by row.
            page.goto(f"{live.base}/console/pharmacy/prices")
            expect(page.locator('tr[data-listed="VD-32666-21"]')).to_contain_text("700 ₫")
            expect(page.locator("#price-file-name")).to_have_text("Chưa chọn tệp")
            bad = "Số đăng ký;Giá;Đơn vị\r\nVD-32666-21;1.600;viên\r\nVD-32666-21x;abc;viên\r\n"
            page.set_input_files(
                "#price-file", {"name": "gia.csv", "mimeType": "text/csv", "buffer": bad.encode()}
            )
            expect(page.locator("#price-file-name")).to_have_text("gia.csv")
            page.get_by_role("button", name="Tải lên và niêm yết").click()
            refused = page.locator("#prices-errors")
            expect(refused).to_contain_text("Dòng 3, Số đăng ký: Không có sản phẩm này")
            expect(refused).to_contain_text("Dòng 3, Giá: Cần một số nguyên.")
            good = "Số đăng ký;Giá;Đơn vị\r\nVD-32666-21;1.600;viên\r\n"
            page.set_input_files(
                "#price-file", {"name": "gia.csv", "mimeType": "text/csv", "buffer": good.encode()}
            )
            page.get_by_role("button", name="Tải lên và niêm yết").click()
            expect(page.locator("#prices-report")).to_be_visible()
            expect(page.locator('tr[data-listed="VD-32666-21"]')).to_contain_text("1.600 ₫")
            shot(page, "counter-7-price-list")

            # On a phone, nothing scrolls sideways.
            page.set_viewport_size({"width": 360, "height": 740})
            assert sideways_overflow(page) == 0
            page.goto(f"{live.base}/console/pharmacy")
            assert sideways_overflow(page) == 0
            context.close()
        finally:
            browser.close()
