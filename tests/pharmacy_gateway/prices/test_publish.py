"""PUT /gateway/v1/prices: pharmacies publish prices; every change is kept."""

from __future__ import annotations

import asyncio

import pytest

from eprescribe.catalogue import service as catalogue
from eprescribe.registry import service as registry
from pharmacy_gateway.prices import service as prices
from tests.conftest import Harness
from tests.factories import Portal, token


async def outlet_history(harness: Harness, connection_code: str, registration_no: str) -> list[int]:
    async with harness.runtime.database.sessionmaker() as session:
        pharmacy = await registry.get_pharmacy(session, connection_code)
        product = await catalogue.get_product(session, registration_no)
        assert pharmacy is not None and product is not None
        return [price for price, _, _ in await prices.outlet_history(session, pharmacy, product)]


class TestPublishing:
    async def test_lists_the_prices_and_counts_them(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        word = token()
        a = await portal_api.product(ingredient=f"{word}amol")
        b = await portal_api.product(ingredient=f"{word}ine", category="supplement", unit="gói")
        r = await portal_api.publish(outlet, (a, 1500), (b, 32000))
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["accepted"], body["created"], body["changed"], body["unchanged"]) == (2, 2, 0, 0)
        assert body["updated_at"].endswith("+07:00")
        found = await portal_api.prices(q=word)
        assert found["total"] == 2
        assert {(i["drug"]["registration_no"], i["price"], i["unit"]) for i in found["items"]} == {
            (a.registration_no, 1500, "viên"),
            (b.registration_no, 32000, "gói"),
        }
        assert all(i["outlet"]["id"] == outlet.id for i in found["items"])

    async def test_keeps_every_change_in_history(self, portal_api: Portal, harness: Harness) -> None:
        outlet = await portal_api.outlet()
        product = await portal_api.product(ingredient=f"{token()}amol")
        steps = [(1000, (1, 0, 0)), (1200, (0, 1, 0)), (1200, (0, 0, 1)), (900, (0, 1, 0))]
        for price, counts in steps:
            r = await portal_api.publish(outlet, (product, price))
            assert r.status_code == 200, r.text
            assert (r.json()["created"], r.json()["changed"], r.json()["unchanged"]) == counts
        # A confirmed, unchanged price is not a change: three entries, in order.
        assert await outlet_history(harness, outlet.connection_code, product.registration_no) == [
            1000,
            1200,
            900,
        ]
        listed = await portal_api.prices(q=product.registration_no)
        assert [i["price"] for i in listed["items"]] == [900]

    async def test_unit_matches_without_case_or_diacritics(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        product = await portal_api.product(ingredient=f"{token()}amol")
        r = await portal_api.client.put(
            "/gateway/v1/prices",
            json={"items": [{"registration_no": product.registration_no, "price": 700, "unit": " VIÊN "}]},
            headers=outlet.headers,
        )
        assert r.status_code == 200, r.text
        listed = await portal_api.prices(q=product.registration_no)
        assert listed["items"][0]["unit"] == "viên"

    async def test_a_licensed_outlet_may_list_a_controlled_drug(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet(controlled=True)
        product = await portal_api.product(category="narcotic", ingredient=f"{token()}morphine")
        r = await portal_api.publish(outlet, (product, 25000))
        assert r.status_code == 200, r.text


class TestRefusals:
    async def test_reports_each_bad_item_and_applies_nothing(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        word = token()
        good = await portal_api.product(ingredient=f"{word}amol")
        other = await portal_api.product(ingredient=f"{word}ine")
        items = [
            {"registration_no": good.registration_no, "price": 1000, "unit": "viên"},
            {"registration_no": "VD-00000-00-NOPE", "price": 1000, "unit": "viên"},
            {"registration_no": other.registration_no, "price": 0, "unit": "viên"},
            {"registration_no": other.registration_no, "price": -5, "unit": "viên"},
            {"registration_no": other.registration_no, "price": 12.5, "unit": "viên"},
            {"registration_no": other.registration_no, "price": 1000, "unit": "hộp"},
            {"registration_no": good.registration_no, "price": 1100, "unit": "viên"},
        ]
        r = await portal_api.client.put("/gateway/v1/prices", json={"items": items}, headers=outlet.headers)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        errors = r.json()["errors"]
        where = [tuple(e["loc"]) for e in errors]
        assert where == [
            ("body", "items", 1, "registration_no"),
            ("body", "items", 2, "price"),
            ("body", "items", 3, "price"),
            ("body", "items", 4, "price"),
            ("body", "items", 5, "unit"),
            ("body", "items", 6, "registration_no"),
        ]
        messages = {tuple(e["loc"])[2]: e["msg"] for e in errors}
        assert "catalogue" in messages[1]
        assert "greater than 0" in messages[2]
        assert "viên" in messages[5]
        assert "repeats" in messages[6]
        assert "nothing was applied" in r.json()["detail"]
        assert (await portal_api.prices(q=word))["total"] == 0

    async def test_an_unknown_product_with_a_bad_price_gets_both_errors(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        r = await portal_api.client.put(
            "/gateway/v1/prices",
            json={"items": [{"registration_no": "VN-99999-99-XXX", "price": "cheap", "unit": "viên"}]},
            headers=outlet.headers,
        )
        assert r.status_code == 422
        assert [e["loc"][-1] for e in r.json()["errors"]] == ["registration_no", "price"]

    async def test_more_than_5000_items_is_refused(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        product = await portal_api.product(ingredient=f"{token()}amol")
        items = [{"registration_no": product.registration_no, "price": 1000, "unit": "viên"}] * 5001
        r = await portal_api.client.put("/gateway/v1/prices", json={"items": items}, headers=outlet.headers)
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"loc": ["body", "items"], "msg": "must hold 1 to 5000 items, not 5001"}
        ]

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"items": []}, ["body", "items"]),
            ({}, ["body", "items"]),
            ([], ["body"]),
            ({"items": [], "extra": 1}, ["body", "extra"]),
            (
                {"items": [{"registration_no": "X", "price": 1, "unit": "viên", "note": "?"}]},
                ["body", "items", 0],
            ),
        ],
    )
    async def test_malformed_lists_are_refused(
        self, portal_api: Portal, body: object, loc: list[object]
    ) -> None:
        outlet = await portal_api.outlet()
        r = await portal_api.client.put("/gateway/v1/prices", json=body, headers=outlet.headers)
        assert r.status_code == 422, r.text
        assert any(e["loc"][: len(loc)] == loc for e in r.json()["errors"])

    async def test_a_body_that_is_not_json_is_400(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        r = await portal_api.client.put(
            "/gateway/v1/prices",
            content=b"{items: [",
            headers={**outlet.headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"

    async def test_needs_a_pharmacy_token(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol")
        body = {"items": [{"registration_no": product.registration_no, "price": 1000, "unit": "viên"}]}
        anonymous = await portal_api.client.put("/gateway/v1/prices", json=body)
        assert anonymous.status_code == 401
        facility = await portal_api.api.facility()
        refused = await portal_api.client.put("/gateway/v1/prices", json=body, headers=facility.headers)
        assert refused.status_code == 403

    async def test_a_controlled_drug_needs_a_controlled_licence(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet(controlled=False)
        product = await portal_api.product(category="psychotropic", ingredient=f"{token()}azepam")
        r = await portal_api.publish(outlet, (product, 3000))
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "items", 0, "registration_no"]
        assert "controlled licence" in r.json()["errors"][0]["msg"]

    async def test_a_suspended_outlet_cannot_publish_and_leaves_the_portal(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        product = await portal_api.product(ingredient=f"{token()}amol")
        await portal_api.listed(outlet, (product, 1000))
        assert (await portal_api.prices(q=product.registration_no))["total"] == 1
        assert (
            await portal_api.admin(f"/api/v1/pharmacies/{outlet.connection_code}/suspend")
        ).status_code == 200
        assert (await portal_api.prices(q=product.registration_no))["total"] == 0
        assert (await portal_api.publish(outlet, (product, 900))).status_code == 401
        assert (
            await portal_api.admin(f"/api/v1/pharmacies/{outlet.connection_code}/reinstate")
        ).status_code == 200
        assert [i["price"] for i in (await portal_api.prices(q=product.registration_no))["items"]] == [1000]


@pytest.mark.postgres_only
class TestConcurrentPublishing:
    async def test_history_follows_the_order_the_prices_were_applied(self, pg_harness: Harness) -> None:
        portal_api = Portal(pg_harness)
        outlet = await portal_api.outlet()
        product = await portal_api.product(ingredient=f"{token()}amol")
        prices = list(range(1000, 1400, 20))
        answers = await asyncio.gather(*(portal_api.publish(outlet, (product, p)) for p in prices))
        assert all(a.status_code == 200 for a in answers)
        history = await outlet_history(pg_harness, outlet.connection_code, product.registration_no)
        # Each publication saw the one before it: one entry per price, the last one listed.
        assert sorted(history) == prices
        assert sum(a.json()["created"] for a in answers) == 1
        listed = await portal_api.prices(q=product.registration_no)
        assert [i["price"] for i in listed["items"]] == [history[-1]]
