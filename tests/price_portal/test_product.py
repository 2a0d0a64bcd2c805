"""The product answer: statistics, alternatives, outlets (price, distance, paid price) and history."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit.time import VIETNAM_TIME
from tests.conftest import Harness
from tests.factories import Portal, token

PHARMACIST = {"full_name": "DS. Lê Văn Cường", "license_no": "012345/HNO-CCHND"}


async def product_json(portal_api: Portal, registration_no: str, **params: Any) -> dict[str, Any]:
    r = await portal_api.client.get(f"/portal/api/v1/drugs/{registration_no}", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def outlets_json(portal_api: Portal, registration_no: str, **params: Any) -> dict[str, Any]:
    r = await portal_api.client.get(f"/portal/api/v1/drugs/{registration_no}/outlets", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


class TestStatistics:
    async def test_min_median_max_and_count_on_known_prices(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol", price=350)
        outlets = [await portal_api.outlet() for _ in range(6)]
        for outlet, price in zip(outlets[:5], (100, 300, 200, 500, 400), strict=True):
            await portal_api.listed(outlet, (product, price))
        body = await product_json(portal_api, product.registration_no)
        assert body["stats"] == {"min": 100, "median": 300, "max": 500, "outlets": 5}
        assert body["declared_price"] == 350
        assert {
            k: body[k]
            for k in (
                "registration_no",
                "name",
                "active_ingredient",
                "strength",
                "dosage_form",
                "category",
                "unit",
            )
        } == {
            "registration_no": product.registration_no,
            "name": product.name,
            "active_ingredient": product.active_ingredient,
            "strength": "500mg",
            "dosage_form": "viên nén",
            "category": "normal",
            "unit": "viên",
        }
        # An even count: the mean of the two middle prices (300 and 301), half a dong rounded up.
        await portal_api.listed(outlets[5], (product, 301))
        body = await product_json(portal_api, product.registration_no)
        assert body["stats"] == {"min": 100, "median": 301, "max": 500, "outlets": 6}

    async def test_by_province_and_without_suspended_outlets(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol")
        hanoi = [await portal_api.outlet(province="01") for _ in range(2)]
        danang = await portal_api.outlet(province="48")
        await portal_api.listed(hanoi[0], (product, 1000))
        await portal_api.listed(hanoi[1], (product, 3000))
        await portal_api.listed(danang, (product, 2000))
        assert (await product_json(portal_api, product.registration_no, province="01"))["stats"] == {
            "min": 1000,
            "median": 2000,
            "max": 3000,
            "outlets": 2,
        }
        await portal_api.admin(f"/api/v1/pharmacies/{hanoi[1].connection_code}/suspend")
        assert (await product_json(portal_api, product.registration_no))["stats"] == {
            "min": 1000,
            "median": 1500,
            "max": 2000,
            "outlets": 2,
        }

    async def test_a_product_nobody_lists(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol", price=None)
        body = await product_json(portal_api, product.registration_no)
        assert body["stats"] == {"min": None, "median": None, "max": None, "outlets": 0}
        assert body["declared_price"] is None and body["alternatives"] == []

    async def test_unknown_product_is_404(self, portal_api: Portal) -> None:
        r = await portal_api.client.get("/portal/api/v1/drugs/VD-00000-00-NONE")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/product-not-found")


class TestRegistrationNumbersWithSlashes:
    async def test_a_supplement_notification_number_works_everywhere(self, portal_api: Portal) -> None:
        number = f"{secrets.randbelow(90000) + 10000}/2025/ĐKSP-{token()}"
        r = await portal_api.client.post(
            "/api/v1/drugs",
            json={
                "registration_no": number,
                "name": f"Omega 3 {token()}",
                "active_ingredient": "dầu cá",
                "strength": "1000mg",
                "dosage_form": "viên nang mềm",
                "unit": "viên",
                "category": "supplement",
                "declared_price": 5000,
            },
            headers=await portal_api.api.admin_headers(),
        )
        assert r.status_code == 201, r.text
        outlet = await portal_api.outlet()
        r = await portal_api.client.put(
            "/gateway/v1/prices",
            json={"items": [{"registration_no": number, "price": 4500, "unit": "viên"}]},
            headers=outlet.headers,
        )
        assert r.status_code == 200, r.text
        assert (await product_json(portal_api, number))["stats"]["outlets"] == 1
        assert (await outlets_json(portal_api, number))["items"][0]["price"] == 4500
        history = await portal_api.client.get(f"/portal/api/v1/drugs/{number}/history")
        assert history.status_code == 200 and len(history.json()["points"]) == 1
        assert (await portal_api.client.get(f"/products/{number}")).status_code == 200
        assert (await portal_api.client.get(f"/products/{number}/history.svg")).status_code == 200
        found = await portal_api.prices(q=number)
        assert [i["drug"]["registration_no"] for i in found["items"]] == [number]


class TestAlternatives:
    async def test_cheaper_products_with_the_same_ingredient_strength_and_form(
        self, portal_api: Portal
    ) -> None:
        ingredient = f"{token()}prazole"
        same = {"ingredient": ingredient, "strength": "20mg", "dosage_form": "viên nang"}
        product = await portal_api.product(name="Brand A", price=9000, **same)
        listed_cheaper = await portal_api.product(name="Brand B", price=9000, **same)
        declared_cheaper = await portal_api.product(name="Brand C", price=2500, **same)
        dearer = await portal_api.product(name="Brand D", price=1000, **same)
        other_strength = await portal_api.product(
            name="Brand E", price=100, ingredient=ingredient, strength="40mg", dosage_form="viên nang"
        )
        other_form = await portal_api.product(
            name="Brand F", price=100, ingredient=ingredient, strength="20mg", dosage_form="viên nén"
        )
        outlets = [await portal_api.outlet() for _ in range(2)]
        await portal_api.listed(
            outlets[0],
            (product, 3000),
            (listed_cheaper, 2000),
            (dearer, 4000),
            (other_strength, 100),
            (other_form, 100),
        )
        await portal_api.listed(outlets[1], (product, 5000), (listed_cheaper, 2600))
        body = await product_json(portal_api, product.registration_no)
        assert body["stats"]["min"] == 3000
        assert [
            (a["registration_no"], a["min_price"], a["outlets"], a["declared_price"])
            for a in body["alternatives"]
        ] == [
            (listed_cheaper.registration_no, 2000, 2, 9000),
            (declared_cheaper.registration_no, None, 0, 2500),
        ]
        assert all(a["strength"] == "20mg" and a["dosage_form"] == "viên nang" for a in body["alternatives"])


class TestOutlets:
    async def test_cheapest_first_with_the_declared_price_mark(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol", price=1000)
        cheap, dear = await portal_api.outlet(), await portal_api.outlet()
        await portal_api.listed(dear, (product, 1300))
        await portal_api.listed(cheap, (product, 950))
        body = await outlets_json(portal_api, product.registration_no)
        assert [(i["outlet"]["id"], i["price"], i["above_declared"]) for i in body["items"]] == [
            (cheap.id, 950, False),
            (dear.id, 1300, True),
        ]
        assert body["total"] == 2 and body["items"][0]["distance_km"] is None

    async def test_nearest_first_when_a_location_is_given(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol")
        # Hanoi, Hai Phong, Ho Chi Minh City; and one outlet without coordinates.
        hanoi = await portal_api.outlet(latitude=21.0285, longitude=105.8542)
        haiphong = await portal_api.outlet(province="31", latitude=20.8449, longitude=106.6881)
        saigon = await portal_api.outlet(province="79", latitude=10.7769, longitude=106.7009)
        nowhere = await portal_api.outlet()
        await portal_api.listed(saigon, (product, 100))
        await portal_api.listed(nowhere, (product, 50))
        await portal_api.listed(haiphong, (product, 200))
        await portal_api.listed(hanoi, (product, 300))
        near_hanoi = await outlets_json(portal_api, product.registration_no, lat=21.03, lon=105.85)
        assert [i["outlet"]["id"] for i in near_hanoi["items"]] == [
            hanoi.id,
            haiphong.id,
            saigon.id,
            nowhere.id,
        ]
        distances = [i["distance_km"] for i in near_hanoi["items"]]
        assert distances[0] < 1 and 85 < distances[1] < 105 and 1100 < distances[2] < 1200
        assert distances[3] is None
        near_saigon = await outlets_json(portal_api, product.registration_no, lat=10.78, lon=106.70)
        assert [i["outlet"]["id"] for i in near_saigon["items"]][:3] == [saigon.id, haiphong.id, hanoi.id]

    @pytest.mark.parametrize("params", [{"lat": 21.0}, {"lon": 105.0}, {"lat": 91, "lon": 0}])
    async def test_a_location_needs_both_valid_coordinates(
        self, portal_api: Portal, params: dict[str, float]
    ) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol")
        r = await portal_api.client.get(
            f"/portal/api/v1/drugs/{product.registration_no}/outlets", params=params
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"][0] == "query"

    async def test_median_paid_price_from_real_dispenses(self, portal_api: Portal, harness: Harness) -> None:
        api = portal_api.api
        world = await api.world()
        product = await portal_api.product(ingredient=f"{token()}amol", price=1000)
        seller, quiet = await portal_api.outlet(), await portal_api.outlet()
        await portal_api.listed(seller, (product, 1200))
        await portal_api.listed(quiet, (product, 1100))

        async def sell(outlet_token: str, unit_prices: list[int]) -> None:
            created = await api.prescribe(world, items=[product.line(quantity=len(unit_prices) * 2)])
            for unit_price in unit_prices:
                r = await portal_api.client.post(
                    f"/gateway/v1/prescriptions/{created['code']}/dispenses",
                    json={
                        "pharmacist": PHARMACIST,
                        "items": [
                            {
                                "line_no": 1,
                                "registration_no": product.registration_no,
                                "quantity": 2,
                                "unit_price": unit_price,
                            }
                        ],
                    },
                    headers={
                        "Authorization": f"Bearer {outlet_token}",
                        "Idempotency-Key": secrets.token_hex(8),
                    },
                )
                assert r.status_code == 201, r.text

        await sell(seller.token, [1000, 1500, 1100])
        # Two sales are too few to show: a median of so few would reveal what one patient paid.
        await sell(quiet.token, [900, 950])
        body = await outlets_json(portal_api, product.registration_no)
        paid = {i["outlet"]["id"]: (i["paid_median_30d"], i["paid_sales_30d"]) for i in body["items"]}
        assert paid[seller.id] == (1100, 3)
        assert paid[quiet.id] == (None, None)


class TestHistory:
    async def test_prices_in_effect_at_the_end_of_each_day(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol", price=1000)
        first, second = await portal_api.outlet(), await portal_api.outlet()
        now = datetime.now(UTC) - timedelta(seconds=1)
        today = now.astimezone(VIETNAM_TIME)

        def day(n: int) -> datetime:
            # Whole days back from now fall on the Vietnam date n days back.
            return now - timedelta(days=n)

        await portal_api.publish_at(first, day(10), (product, 1000))
        await portal_api.publish_at(second, day(7), (product, 800))
        await portal_api.publish_at(first, day(5), (product, 1200))
        await portal_api.publish_at(first, day(5) + timedelta(hours=1), (product, 1200))
        r = await portal_api.client.get(f"/portal/api/v1/drugs/{product.registration_no}/history?days=14")
        assert r.status_code == 200
        body = r.json()
        assert body["declared_price"] == 1000
        points = {p["date"]: (p["min"], p["median"], p["max"], p["outlets"]) for p in body["points"]}

        def on(n: int) -> tuple[int, int, int, int]:
            return points[(today - timedelta(days=n)).date().isoformat()]

        assert min(points) == (today - timedelta(days=10)).date().isoformat()
        assert on(10) == on(8) == (1000, 1000, 1000, 1)
        assert on(7) == on(6) == (800, 900, 1000, 2)
        assert on(5) == on(0) == (800, 1000, 1200, 2)
        assert len(points) == 11

    async def test_no_history_for_an_unlisted_product(self, portal_api: Portal) -> None:
        product = await portal_api.product(ingredient=f"{token()}amol")
        r = await portal_api.client.get(f"/portal/api/v1/drugs/{product.registration_no}/history")
        assert r.json()["points"] == []
        svg = await portal_api.client.get(f"/products/{product.registration_no}/history.svg")
        assert svg.status_code == 404


class TestOutletAnswer:
    async def test_lists_the_outlets_prices(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet(province="48", kind="drugstore")
        a = await portal_api.product(ingredient=f"{token()}amol", price=1000)
        b = await portal_api.product(ingredient=f"{token()}ine", price=None)
        await portal_api.listed(outlet, (a, 1200), (b, 300))
        r = await portal_api.client.get(f"/portal/api/v1/outlets/{outlet.id}")
        assert r.status_code == 200
        body = r.json()
        assert (body["id"], body["kind"], body["province_code"], body["total"]) == (
            outlet.id,
            "drugstore",
            "48",
            2,
        )
        assert [(i["drug"]["registration_no"], i["price"], i["above_declared"]) for i in body["items"]] == [
            (b.registration_no, 300, False),
            (a.registration_no, 1200, True),
        ]

    async def test_unknown_or_suspended_outlet_is_404(self, portal_api: Portal) -> None:
        assert (await portal_api.client.get("/portal/api/v1/outlets/999999999")).status_code == 404
        outlet = await portal_api.outlet()
        await portal_api.admin(f"/api/v1/pharmacies/{outlet.connection_code}/revoke")
        assert (await portal_api.client.get(f"/portal/api/v1/outlets/{outlet.id}")).status_code == 404
