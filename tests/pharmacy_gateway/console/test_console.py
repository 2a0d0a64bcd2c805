"""The pharmacist console over HTTP: lookup, dispensing, receipts, voids, isolation, decoding, prices."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
from PIL import Image

from tests.clients import IDEMPOTENCY, Browser, Browsers
from tests.conftest import Harness
from tests.factories import Api, Pharmacy, World

LOOKUP = "/console/pharmacy/api/lookup"
DISPENSE = "/console/pharmacy/api/dispenses"
DECODE = "/console/pharmacy/api/decode"
PHARMACIST = {"full_name": "DS. Lê Thị Hoa", "license_no": "004321/HNO-CCHND"}


async def publish(api: Api, pharmacy: Pharmacy, *items: tuple[str, int, str]) -> None:
    r = await api.client.put(
        "/gateway/v1/prices",
        json={"items": [{"registration_no": n, "price": p, "unit": u} for n, p, u in items]},
        headers=pharmacy.headers,
    )
    assert r.status_code == 200, r.text


async def counter(api: Api, browsers: Browsers, **kwargs: Any) -> tuple[Pharmacy, Browser]:
    pharmacy = await api.pharmacy(**kwargs)
    browser = browsers()
    await browser.as_pharmacist(pharmacy)
    return pharmacy, browser


async def sell(
    browser: Browser, code: str, items: list[dict[str, Any]], key: str | None = None
) -> httpx.Response:
    if key is None:
        form = await browser.post_json(LOOKUP, {"text": code})
        assert form.status_code == 200, form.text
        found = IDEMPOTENCY.search(form.text)
        assert found
        key = found.group(1)
    return await browser.post_json(
        DISPENSE, {"code": code, "idempotency_key": key, "pharmacist": PHARMACIST, "items": items}
    )


async def access_actions(api: Api, w: World, code: str) -> list[tuple[str, str, str]]:
    log = await api.client.get(f"/api/v1/prescriptions/{code}/access-log", headers=w.facility.headers)
    return [(e["actor_kind"], e["actor_code"], e["action"]) for e in log.json()]


class TestLookup:
    async def test_shows_what_remains_with_this_pharmacys_own_price(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        product = w.products["normal"]
        cheaper = await api.product(ingredient=product.active_ingredient, price=800)
        code = (await api.prescribe(w))["code"]
        pharmacy, browser = await counter(api, browsers)
        await publish(
            api,
            pharmacy,
            (cheaper.registration_no, 950, cheaper.unit),
            (product.registration_no, 1300, product.unit),
        )
        form = await browser.post_json(LOOKUP, {"text": code.lower()})
        assert form.status_code == 200
        html = form.text
        assert f'data-code="{code}"' in html
        assert 'data-remaining="10"' in html
        options = re.findall(r'<option value="([^"]+)" data-price="([^"]*)"( selected)?', html)
        assert {n: p for n, p, _ in options} == {
            cheaper.registration_no: "950",
            product.registration_no: "1300",
        }
        # The cheapest product this pharmacy lists comes first and is preselected.
        assert options[0] == (cheaper.registration_no, "950", " selected")
        # No identity numbers reach a pharmacy.
        assert "001180012345" not in html and "DN4010112345678" not in html
        assert ("pharmacy", pharmacy.connection_code, "lookup") in await access_actions(api, w, code)

    async def test_an_unknown_code_is_404_and_logged_as_a_miss(self, api: Api, browsers: Browsers) -> None:
        _, browser = await counter(api, browsers)
        missing = await browser.post_json(LOOKUP, {"text": "01001ZZZZZZZ-c"})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

    async def test_a_controlled_prescription_is_not_offered_without_the_licence(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w, kind="n"))["code"]
        _, browser = await counter(api, browsers)
        form = await browser.post_json(LOOKUP, {"text": code})
        # Not even shown: the patient's name and drugs stay with licensed outlets.
        assert form.status_code == 403
        assert form.headers["content-type"].startswith("application/problem+json")
        assert 'id="dispense-submit"' not in form.text
        narcotic = w.products["narcotic"]
        # A dispense sent anyway (a key the form never gave) is refused too.
        refused = await sell(
            browser,
            code,
            [{"line_no": 1, "registration_no": narcotic.registration_no, "quantity": 1}],
            key="f" * 32,
        )
        assert refused.status_code == 403


class TestDispensing:
    async def test_dispense_part_then_the_rest(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        line = {"line_no": 1, "registration_no": product.registration_no, "unit_price": 1200}
        first = await sell(browser, code, [line | {"quantity": 4}])
        assert first.status_code == 201, first.text
        assert first.json()["prescription_status"] == "partially_dispensed"
        assert first.json()["items"] == [{"line_no": 1, "dispensed": 4, "remaining": 6}]
        assert first.json()["receipt_url"] == f"/console/pharmacy/dispenses/{first.json()['dispense_id']}"
        too_many = await sell(browser, code, [line | {"quantity": 7}])
        assert too_many.status_code == 409
        assert too_many.json()["errors"][0]["loc"] == ["body", "items", 0, "quantity"]
        rest = await sell(browser, code, [line | {"quantity": 6}])
        assert rest.status_code == 201
        assert rest.json()["prescription_status"] == "dispensed"

    async def test_a_double_submitted_form_dispenses_once(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        form = await browser.post_json(LOOKUP, {"text": code})
        key = IDEMPOTENCY.search(form.text).group(1)  # type: ignore[union-attr]
        items = [{"line_no": 1, "registration_no": product.registration_no, "quantity": 3}]
        first = await sell(browser, code, items, key)
        second = await sell(browser, code, items, key)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        read = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        assert read.json()["items"][0]["remaining"] == 7
        # A fresh form render carries a fresh key.
        again = await browser.post_json(LOOKUP, {"text": code})
        assert IDEMPOTENCY.search(again.text).group(1) != key  # type: ignore[union-attr]

    async def test_the_receipt_names_the_products_and_the_total(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        code = (await api.prescribe(w))["code"]
        pharmacy, browser = await counter(api, browsers)
        sold = await sell(
            browser,
            code,
            [
                {
                    "line_no": 1,
                    "registration_no": product.registration_no,
                    "quantity": 4,
                    "unit_price": 1250,
                    "batch_no": "L01",
                }
            ],
        )
        receipt = await browser.get(sold.json()["receipt_url"])
        assert receipt.status_code == 200
        assert product.name in receipt.text and "L01" in receipt.text
        assert "<strong data-total>5.000 ₫</strong>" in receipt.text
        assert pharmacy.connection_code in receipt.text and code in receipt.text
        assert "data-print" in receipt.text


class TestVoidAndIsolation:
    async def test_voiding_from_the_list_returns_the_quantities(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        code = (await api.prescribe(w))["code"]
        _, browser = await counter(api, browsers)
        sold = (
            await sell(
                browser, code, [{"line_no": 1, "registration_no": product.registration_no, "quantity": 5}]
            )
        ).json()
        listing = await browser.get("/console/pharmacy/dispenses")
        assert f'data-dispense="{sold["dispense_id"]}"' in listing.text
        voided = await browser.post_form(
            f"/console/pharmacy/dispenses/{sold['dispense_id']}/void", {"reason": "Nhầm đơn"}
        )
        assert voided.status_code == 303
        assert voided.headers["location"] == "/console/pharmacy/dispenses?done=void"
        read = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        assert read.json()["items"][0]["remaining"] == 10
        assert read.json()["status"] == "active"
        after = await browser.get("/console/pharmacy/dispenses?done=void")
        assert 'data-voided="true"' in after.text and "Nhầm đơn" in after.text
        twice = await browser.post_form(
            f"/console/pharmacy/dispenses/{sold['dispense_id']}/void", {"reason": "again"}
        )
        assert twice.status_code == 409
        assert 'class="note error"' in twice.text

    async def test_a_pharmacist_never_sees_another_pharmacys_dispenses(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        product = w.products["normal"]
        code = (await api.prescribe(w))["code"]
        _, mine = await counter(api, browsers)
        sold = (
            await sell(
                mine, code, [{"line_no": 1, "registration_no": product.registration_no, "quantity": 2}]
            )
        ).json()
        _, theirs = await counter(api, browsers)
        listing = await theirs.get("/console/pharmacy/dispenses")
        assert sold["dispense_id"] not in listing.text
        assert (await theirs.get(f"/console/pharmacy/dispenses/{sold['dispense_id']}")).status_code == 404
        refused = await theirs.post_form(
            f"/console/pharmacy/dispenses/{sold['dispense_id']}/void", {"reason": "x"}
        )
        assert refused.status_code == 404
        read = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        assert read.json()["items"][0]["dispensed"] == 2
        # The owner still sees it, still valid.
        assert 'data-voided="true"' not in (await mine.get("/console/pharmacy/dispenses")).text

    async def test_a_prescriber_session_opens_no_pharmacist_page(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        browser = browsers()
        await browser.as_prescriber(w)
        assert (await browser.client.get("/console/pharmacy")).status_code == 303
        assert (await browser.post_json(LOOKUP, {"text": "01001ZZZZZZZ-c"})).status_code == 401


class TestServerSideDecoder:
    async def test_decodes_the_printed_qr_and_the_lookup_verifies_its_signature(
        self, api: Api, browsers: Browsers
    ) -> None:
        w = await api.world()
        code = (await api.prescribe(w))["code"]
        png = await api.client.get(f"/api/v1/prescriptions/{code}/qr.png", headers=w.facility.headers)
        qr_text = (await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)).json()[
            "qr_text"
        ]
        # A camera frame: the code somewhere in a larger grey picture, as JPEG.
        frame = Image.new("RGB", (960, 720), (200, 200, 200))
        frame.paste(Image.open(io.BytesIO(png.content)).convert("RGB"), (300, 150))
        buffer = io.BytesIO()
        frame.save(buffer, format="JPEG", quality=85)
        _, browser = await counter(api, browsers)
        decoded = await browser.client.post(
            DECODE,
            content=buffer.getvalue(),
            headers={"Content-Type": "image/jpeg", "X-CSRF-Token": browser.csrf},
        )
        assert decoded.status_code == 200
        assert decoded.json() == {"text": qr_text}
        form = await browser.post_json(LOOKUP, {"text": qr_text})
        assert 'data-qr="verified"' in form.text

    async def test_a_frame_without_a_code_decodes_to_nothing(self, api: Api, browsers: Browsers) -> None:
        _, browser = await counter(api, browsers)
        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), (90, 120, 150)).save(buffer, format="JPEG")
        empty = await browser.client.post(
            DECODE,
            content=buffer.getvalue(),
            headers={"Content-Type": "image/jpeg", "X-CSRF-Token": browser.csrf},
        )
        assert empty.json() == {"text": None}

    async def test_refuses_what_is_not_an_image_and_oversized_frames(
        self, api: Api, browsers: Browsers
    ) -> None:
        _, browser = await counter(api, browsers)
        headers = {"Content-Type": "image/jpeg", "X-CSRF-Token": browser.csrf}
        assert (
            await browser.client.post(DECODE, content=b"not an image", headers=headers)
        ).status_code == 400
        huge = await browser.client.post(DECODE, content=b"\0" * (2 * 1024 * 1024 + 1), headers=headers)
        assert huge.status_code == 400
        buffer = io.BytesIO()
        Image.new("L", (2600, 2000), 255).save(buffer, format="PNG")
        too_many_pixels = await browser.client.post(DECODE, content=buffer.getvalue(), headers=headers)
        assert too_many_pixels.status_code == 400

    async def test_needs_the_session_and_its_token(self, harness: Harness, browsers: Browsers) -> None:
        anonymous = browsers()
        assert (await anonymous.client.post(DECODE, content=b"x")).status_code == 401


class TestPriceList:
    async def test_a_csv_upload_publishes_every_row(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        _, browser = await counter(api, browsers)
        csv_text = f"registration_no,price,unit\r\n{product.registration_no},1450,{product.unit}\r\n"
        uploaded = await browser.client.post(
            "/console/pharmacy/prices",
            data={"csrf_token": browser.csrf},
            files={"file": ("gia.csv", ("\ufeff" + csv_text).encode(), "text/csv")},
        )
        assert uploaded.status_code == 200
        assert 'id="prices-report"' in uploaded.text
        listed = await api.client.get(f"/portal/api/v1/drugs/{product.registration_no}")
        assert listed.json()["stats"]["min"] == 1450

    async def test_a_bad_row_refuses_the_whole_file_by_line(self, api: Api, browsers: Browsers) -> None:
        w = await api.world()
        product = w.products["normal"]
        _, browser = await counter(api, browsers)
        csv_text = (
            "registration_no,price,unit\n"
            f"{product.registration_no},1450,{product.unit}\n"
            "VD-00000-00-NOPE,900,viên\n"
            f"{product.registration_no}x,-5,{product.unit}\n"
        )
        refused = await browser.client.post(
            "/console/pharmacy/prices",
            data={"csrf_token": browser.csrf},
            files={"file": ("gia.csv", csv_text.encode(), "text/csv")},
        )
        assert refused.status_code == 422
        assert "Dòng 3" in refused.text and "Dòng 4" in refused.text
        assert (await api.client.get(f"/portal/api/v1/drugs/{product.registration_no}")).json()["stats"][
            "outlets"
        ] == 0

    async def test_an_upload_without_the_token_is_refused(self, api: Api, browsers: Browsers) -> None:
        _, browser = await counter(api, browsers)
        refused = await browser.client.post(
            "/console/pharmacy/prices",
            files={"file": ("gia.csv", b"registration_no,price,unit\n", "text/csv")},
        )
        assert refused.status_code == 403


class TestPages:
    async def test_the_desk_and_lists_render_in_both_languages(self, api: Api, browsers: Browsers) -> None:
        _, browser = await counter(api, browsers)
        for path in ("/console/pharmacy", "/console/pharmacy/dispenses", "/console/pharmacy/prices"):
            vi = await browser.get(f"{path}?lang=vi")
            en = await browser.get(f"{path}?lang=en")
            assert vi.status_code == en.status_code == 200
            assert '<html lang="vi">' in vi.text and '<html lang="en">' in en.text
            assert vi.headers["cache-control"] == "no-store" or "private" in vi.headers["cache-control"]
