"""The national protocol end to end over HTTP: HIS writes, pharmacy software reads and sells, one record."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.clients import client_from
from tests.conftest import GATEWAY_LIMITS, Harness, HarnessFactory
from tests.eprescribe.national.http import (
    Clinic,
    app_headers,
    clinic,
    doctor_token,
    fields,
    his_body,
    read,
    sale_body,
    sell,
    send,
    signed,
)
from tests.factories import access_entries


async def prescribed(harness: Harness) -> tuple[Clinic, str]:
    c = await clinic(harness.api)
    token = await doctor_token(harness.client, c)
    body = signed(his_body(c), c.doctor)
    r = await send(harness.client, token, body)
    assert r.status_code == 200, r.text
    return c, str(body["ma_don_thuoc"])


async def contract_view(harness: Harness, c: Clinic, code: str) -> dict[str, Any]:
    r = await harness.client.get(f"/api/v1/prescriptions/{code}", headers=c.facility.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


class TestRoundTrip:
    async def test_his_submits_pharmacies_read_and_sell_the_contract_sees_it_dispensed(
        self, harness: Harness
    ) -> None:
        c, code = await prescribed(harness)
        first = await harness.api.pharmacy()
        second = await harness.api.pharmacy()

        # Pharmacy software reads the prescription by its code, typed in lower case.
        r = await read(harness.client, first, code.lower())
        assert r.status_code == 200, r.text
        rx = r.json()
        assert rx["ma_don_thuoc"] == code
        assert rx["loai_don_thuoc"] == "c"
        assert rx["ho_ten_benh_nhan"] == "Nguyễn Thị Thu Hương"
        assert rx["ngay_sinh_benh_nhan"] == "1987"  # the birth year only, as at the gateway
        assert rx["chan_doan"] == []  # pharmacies never see diagnoses
        assert "001187012345" not in r.text and "GD4797932146557" not in r.text
        assert rx["loi_dan"] == "Uống nhiều nước; tái khám nếu sốt kéo dài"
        assert rx["luu_y"] == "Không dùng chung với rượu bia"
        paracetamol, amoxicillin = rx["thong_tin_don_thuoc"]
        assert isinstance(paracetamol["id"], int) and paracetamol["id"] != amoxicillin["id"]
        assert (paracetamol["so_luong"], paracetamol["so_luong_con_lai"]) == (20, 20)
        assert paracetamol["biet_duoc"] == "Partamol 500"

        # A partial sale at the first pharmacy: 5 of 20, written with strings and empty fields.
        partial = await sell(
            harness.client, first, sale_body(first, code, (paracetamol, c.paracetamol.registration_no, "5"))
        )
        assert partial.status_code == 200, partial.text
        assert partial.json()["success"] == "Cập nhật đơn thuốc thành công"
        assert partial.json()["trang_thai"] == "partially_dispensed"
        view = await contract_view(harness, c, code)
        assert [(i["dispensed"], i["remaining"]) for i in view["items"]] == [(5, 15), (0, 14)]

        # More than remains is refused in the dialect's shape, and nothing moves.
        over = await sell(
            harness.client,
            second,
            sale_body(
                second,
                code,
                (paracetamol, c.paracetamol_generic.registration_no, "16"),
                (amoxicillin, c.amoxicillin.registration_no, "14"),
            ),
        )
        assert over.status_code == 422, over.text
        assert isinstance(over.json()["success"], str)
        assert "thong_tin_thuoc.0.so_luong_ban" in fields(over)
        view = await contract_view(harness, c, code)
        assert [(i["dispensed"], i["remaining"]) for i in view["items"]] == [(5, 15), (0, 14)]

        # The second sale, at another pharmacy, with a generic of the same ingredient: all the rest.
        rest = await sell(
            harness.client,
            second,
            sale_body(
                second,
                code,
                (paracetamol, c.paracetamol_generic.registration_no, "15"),
                (amoxicillin, c.amoxicillin.registration_no, "14"),
                invoice="HD-000123",
            ),
        )
        assert rest.status_code == 200, rest.text
        assert rest.json()["trang_thai"] == "dispensed"
        assert {
            line["ma_thuoc_da_ke_don"]: line["so_luong_con_lai"] for line in rest.json()["thong_tin_thuoc"]
        } == {
            paracetamol["id"]: 0,
            amoxicillin["id"]: 0,
        }

        # The same record through the contract: dispensed, and each pharmacy's own history has its sale.
        view = await contract_view(harness, c, code)
        assert view["status"] == "dispensed"
        assert [(i["dispensed"], i["remaining"]) for i in view["items"]] == [(20, 0), (14, 0)]
        history = await harness.client.get("/gateway/v1/dispenses", headers=second.headers)
        sold = history.json()["items"]
        assert [d["prescription_code"] for d in sold] == [code]
        assert {(i["registration_no"], i["quantity"]) for i in sold[0]["items"]} == {
            (c.paracetamol_generic.registration_no, 15),
            (c.amoxicillin.registration_no, 14),
        }
        gateway = await harness.client.get(f"/gateway/v1/prescriptions/{code}", headers=first.headers)
        assert gateway.json()["status"] == "dispensed"
        # Nothing more can be sold.
        after = await sell(
            harness.client, first, sale_body(first, code, (paracetamol, c.paracetamol.registration_no, "1"))
        )
        assert after.status_code == 422
        # Every read and sale, by either door, is in the one access log.
        actions = [(e.actor_kind, e.action) for e in await access_entries(harness, code)]
        assert actions.count(("pharmacy", "dispense")) == 2
        assert ("pharmacy", "lookup") in actions
        assert actions[0] == ("facility", "create")

    async def test_a_resent_sale_with_the_same_invoice_counts_once(self, harness: Harness) -> None:
        c, code = await prescribed(harness)
        pharmacy = await harness.api.pharmacy()
        paracetamol = (await read(harness.client, pharmacy, code)).json()["thong_tin_don_thuoc"][0]
        body = sale_body(pharmacy, code, (paracetamol, c.paracetamol.registration_no, "4"), invoice="HD-77")
        for _ in range(2):
            r = await sell(harness.client, pharmacy, body)
            assert r.status_code == 200, r.text
        view = await contract_view(harness, c, code)
        assert view["items"][0]["dispensed"] == 4
        # Without an invoice number, the same amounts again are a second sale.
        plain = sale_body(pharmacy, code, (paracetamol, c.paracetamol.registration_no, "4"))
        assert (await sell(harness.client, pharmacy, plain)).status_code == 200
        assert (await sell(harness.client, pharmacy, plain)).status_code == 200
        view = await contract_view(harness, c, code)
        assert view["items"][0]["dispensed"] == 12

    async def test_a_product_of_another_ingredient_is_refused(self, harness: Harness) -> None:
        c, code = await prescribed(harness)
        pharmacy = await harness.api.pharmacy()
        paracetamol = (await read(harness.client, pharmacy, code)).json()["thong_tin_don_thuoc"][0]
        r = await sell(
            harness.client,
            pharmacy,
            sale_body(pharmacy, code, (paracetamol, c.amoxicillin.registration_no, "1")),
        )
        assert r.status_code == 422
        assert "thong_tin_thuoc.0.ma_thuoc" in fields(r)
        assert (await contract_view(harness, c, code))["items"][0]["dispensed"] == 0

    async def test_a_line_id_of_another_prescription_is_refused(self, harness: Harness) -> None:
        c, code = await prescribed(harness)
        pharmacy = await harness.api.pharmacy()
        paracetamol = (await read(harness.client, pharmacy, code)).json()["thong_tin_don_thuoc"][0]
        wrong = {**paracetamol, "id": paracetamol["id"] + 1000}
        r = await sell(
            harness.client, pharmacy, sale_body(pharmacy, code, (wrong, c.paracetamol.registration_no, "1"))
        )
        assert r.status_code == 422
        assert "thong_tin_thuoc.0.ma_thuoc_da_ke_don" in fields(r)

    async def test_a_sale_reported_for_another_outlet_is_refused(self, harness: Harness) -> None:
        c, code = await prescribed(harness)
        pharmacy, other = await harness.api.pharmacy(), await harness.api.pharmacy()
        paracetamol = (await read(harness.client, pharmacy, code)).json()["thong_tin_don_thuoc"][0]
        body = sale_body(other, code, (paracetamol, c.paracetamol.registration_no, "1"))
        r = await sell(harness.client, pharmacy, body)
        assert r.status_code == 403
        assert "ma_dinh_danh_co_so_cung_ung_thuoc" in fields(r)


class TestPharmacyCredentials:
    async def test_wrong_or_missing_keys_are_refused(self, harness: Harness) -> None:
        _, code = await prescribed(harness)
        pharmacy = await harness.api.pharmacy()
        wrong = await harness.client.get(
            f"/api/v1/thong-tin-don-thuoc/{code}", headers=app_headers(pharmacy, "not-the-key")
        )
        assert wrong.status_code == 401
        assert wrong.json()["danh_sach_cac_loi"]
        missing = await harness.client.get(f"/api/v1/thong-tin-don-thuoc/{code}")
        assert missing.status_code == 401
        revoked = await harness.client.post(
            f"/api/v1/pharmacies/{pharmacy.connection_code}/revoke", headers=await harness.api.admin_headers()
        )
        assert revoked.status_code == 200
        assert (await read(harness.client, pharmacy, code)).status_code == 401

    async def test_unknown_codes_are_logged_and_not_found(self, harness: Harness) -> None:
        pharmacy = await harness.api.pharmacy()
        r = await read(harness.client, pharmacy, "01001AAAAAAA-c")
        assert r.status_code == 404
        assert isinstance(r.json()["success"], str)

    async def test_guessing_keys_is_throttled_like_every_door(self, make_harness: HarnessFactory) -> None:
        for engine in ("sqlite", "postgresql"):
            harness = await make_harness(engine, **GATEWAY_LIMITS)
            pharmacy = await harness.api.pharmacy()
            client = client_from(harness.app)
            statuses = []
            for _ in range(GATEWAY_LIMITS["throttle_block_failures"] + 1):
                r = await client.get(
                    "/api/v1/thong-tin-don-thuoc/01001AAAAAAA-c", headers=app_headers(pharmacy, "guess")
                )
                statuses.append(r.status_code)
            assert statuses[0] == 401
            assert statuses[-1] == 429
            assert int(r.headers["Retry-After"]) >= 1
            # The right key is blocked too while the window lasts: the counter is per connection code.
            right = await client.get(
                "/api/v1/thong-tin-don-thuoc/01001AAAAAAA-c", headers=app_headers(pharmacy)
            )
            assert right.status_code == 429
            await client.aclose()

    async def test_guessing_codes_is_throttled(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("sqlite", **GATEWAY_LIMITS)
        pharmacy = await harness.api.pharmacy()
        statuses = [
            (await read(harness.client, pharmacy, f"01001AAAAAA{n}-c")).status_code
            for n in range(GATEWAY_LIMITS["throttle_block_failures"] + 1)
        ]
        assert statuses[0] == 404 and statuses[-1] == 429


class TestConcurrency:
    async def test_concurrent_sales_never_sell_more_than_prescribed(self, pg_harness: Harness) -> None:
        c, code = await prescribed(pg_harness)
        pharmacies = [await pg_harness.api.pharmacy() for _ in range(4)]
        line = (await read(pg_harness.client, pharmacies[0], code)).json()["thong_tin_don_thuoc"][0]

        async def one(index: int) -> httpx.Response:
            p = pharmacies[index % len(pharmacies)]
            async with client_from(pg_harness.app) as client:
                return await sell(client, p, sale_body(p, code, (line, c.paracetamol.registration_no, "3")))

        answers = await asyncio.gather(*(one(i) for i in range(12)))
        ok = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code == 422]
        assert len(ok) == 6 and len(refused) == 6  # 20 prescribed: six sales of 3, then 2 remain
        assert all(r.json()["danh_sach_cac_loi"] for r in refused)
        view = await contract_view(pg_harness, c, code)
        assert (view["items"][0]["dispensed"], view["items"][0]["remaining"]) == (18, 2)
