"""GET /portal/api/v1/prices: search, filters, sorting, paging, errors and HTTP caching."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Portal, token


def prices_of(body: dict[str, Any]) -> list[int]:
    return [i["price"] for i in body["items"]]


class TestFindingProducts:
    async def test_without_diacritics(self, portal_api: Portal) -> None:
        word = token()
        outlet = await portal_api.outlet()
        syrup = await portal_api.product(
            name=f"Thuốc ho Bảo Thanh {word}", ingredient=f"xuyên bối mẫu {word}"
        )
        await portal_api.listed(outlet, (syrup, 45000))
        for q in (
            f"thuoc ho {word}",
            f"THUỐC HO {word}",
            f"Thuốc ho bao thanh {word}",
            f"xuyen boi mau {word}",
        ):
            found = await portal_api.prices(q=q)
            assert [i["drug"]["registration_no"] for i in found["items"]] == [syrup.registration_no], q
            assert found["fuzzy"] is False

    async def test_lower_case_finds_capitalised_names(self, portal_api: Portal) -> None:
        word = token()
        outlet = await portal_api.outlet()
        product = await portal_api.product(
            name=f"Paracetamol {word.upper()} 500mg", ingredient=f"Paracetamol{word}"
        )
        await portal_api.listed(outlet, (product, 600))
        found = await portal_api.prices(q=f"paracetamol {word}")
        assert [i["drug"]["name"] for i in found["items"]] == [f"Paracetamol {word.upper()} 500mg"]

    async def test_by_registration_number_whole_or_in_part(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        product = await portal_api.product(ingredient=f"{token()}amol")
        await portal_api.listed(outlet, (product, 800))
        digits = product.registration_no.split("-")[1]
        for q in (product.registration_no, product.registration_no.lower(), f"{digits}-"):
            found = await portal_api.prices(q=q)
            assert product.registration_no in [i["drug"]["registration_no"] for i in found["items"]], q

    async def test_by_active_ingredient(self, portal_api: Portal) -> None:
        word = token()
        outlet = await portal_api.outlet()
        brands = [
            await portal_api.product(ingredient=f"{word}cillin", name=f"Brand {n} {rand}")
            for n, rand in ((1, "Amo"), (2, "Klav"))
        ]
        await portal_api.listed(outlet, (brands[0], 1200), (brands[1], 1000))
        found = await portal_api.prices(q=f"{word}cillin")
        assert prices_of(found) == [1000, 1200]

    async def test_tolerates_a_small_typo(self, portal_api: Portal) -> None:
        word = token()
        outlet = await portal_api.outlet()
        product = await portal_api.product(name=f"Xylometazoline {word}", ingredient=f"xylometazoline {word}")
        await portal_api.listed(outlet, (product, 21000))
        found = await portal_api.prices(q=f"xylometazloine {word}")
        assert found["fuzzy"] is True
        assert [i["drug"]["registration_no"] for i in found["items"]] == [product.registration_no]

    async def test_an_unrelated_word_finds_nothing(self, portal_api: Portal) -> None:
        found = await portal_api.prices(q=f"qwxz{token()}kkv")
        assert found == {"total": 0, "items": [], "limit": 20, "offset": 0, "fuzzy": True}


class TestFilters:
    async def test_by_province(self, portal_api: Portal) -> None:
        word = token()
        product = await portal_api.product(ingredient=f"{word}amol")
        hanoi, saigon = await portal_api.outlet(province="01"), await portal_api.outlet(province="79")
        await portal_api.listed(hanoi, (product, 1000))
        await portal_api.listed(saigon, (product, 900))
        found = await portal_api.prices(q=word, province="79")
        assert [(i["outlet"]["id"], i["outlet"]["province_code"]) for i in found["items"]] == [
            (saigon.id, "79")
        ]
        assert found["total"] == 1

    async def test_by_category_including_supplements(self, portal_api: Portal) -> None:
        word = token()
        outlet = await portal_api.outlet()
        medicine = await portal_api.product(ingredient=f"{word} vitamin c", name=f"Vitamin C {word} thuốc")
        supplement = await portal_api.product(
            category="supplement",
            ingredient=f"{word} vitamin c",
            name=f"Vitamin C {word} TPBVSK",
            unit="viên",
        )
        await portal_api.listed(outlet, (medicine, 500), (supplement, 700))
        found = await portal_api.prices(q=f"vitamin {word}", category="supplement")
        assert [i["drug"]["category"] for i in found["items"]] == ["supplement"]
        both = await portal_api.prices(q=f"vitamin {word}")
        assert both["total"] == 2

    async def test_category_alone_lists_only_that_category(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        supplement = await portal_api.product(category="supplement", ingredient=f"{token()} omega 3")
        await portal_api.listed(outlet, (supplement, 5000))
        found = await portal_api.prices(category="supplement", sort="updated", limit=100)
        assert found["items"] and {i["drug"]["category"] for i in found["items"]} == {"supplement"}
        assert supplement.registration_no in [i["drug"]["registration_no"] for i in found["items"]]

    async def test_by_outlet_kind(self, portal_api: Portal) -> None:
        word = token()
        product = await portal_api.product(ingredient=f"{word}amol")
        pharmacy = await portal_api.outlet(kind="pharmacy")
        drugstore = await portal_api.outlet(kind="drugstore")
        cabinet = await portal_api.outlet(kind="cabinet")
        for outlet, price in ((pharmacy, 1000), (drugstore, 900), (cabinet, 800)):
            await portal_api.listed(outlet, (product, price))
        for kind, outlet in (("pharmacy", pharmacy), ("drugstore", drugstore), ("cabinet", cabinet)):
            found = await portal_api.prices(q=word, kind=kind)
            assert [(i["outlet"]["id"], i["outlet"]["kind"]) for i in found["items"]] == [(outlet.id, kind)]

    async def test_filters_combine(self, portal_api: Portal) -> None:
        word = token()
        product = await portal_api.product(ingredient=f"{word}amol")
        wanted = await portal_api.outlet(province="48", kind="drugstore")
        for province, kind in (("48", "pharmacy"), ("01", "drugstore")):
            await portal_api.listed(await portal_api.outlet(province=province, kind=kind), (product, 1000))
        await portal_api.listed(wanted, (product, 1000))
        found = await portal_api.prices(q=word, province="48", kind="drugstore")
        assert [i["outlet"]["id"] for i in found["items"]] == [wanted.id]


class TestSortingAndPaging:
    @pytest.fixture
    async def five(self, portal_api: Portal) -> tuple[str, list[int]]:
        word = token()
        product = await portal_api.product(ingredient=f"{word}amol")
        outlets = [await portal_api.outlet() for _ in range(5)]
        # Published one after another: the last is the freshest.
        for outlet, price in zip(outlets, (300, 100, 500, 200, 400), strict=True):
            await portal_api.listed(outlet, (product, price))
        return word, [300, 100, 500, 200, 400]

    async def test_cheapest_first_by_default(self, portal_api: Portal, five: tuple[str, list[int]]) -> None:
        assert prices_of(await portal_api.prices(q=five[0])) == [100, 200, 300, 400, 500]

    async def test_dearest_first(self, portal_api: Portal, five: tuple[str, list[int]]) -> None:
        assert prices_of(await portal_api.prices(q=five[0], sort="-price")) == [500, 400, 300, 200, 100]

    async def test_freshest_first(self, portal_api: Portal, five: tuple[str, list[int]]) -> None:
        found = await portal_api.prices(q=five[0], sort="updated")
        assert prices_of(found) == list(reversed(five[1]))
        stamps = [i["updated_at"] for i in found["items"]]
        assert stamps == sorted(stamps, reverse=True)

    async def test_pages(self, portal_api: Portal, five: tuple[str, list[int]]) -> None:
        first = await portal_api.prices(q=five[0], limit=2)
        second = await portal_api.prices(q=five[0], limit=2, offset=2)
        last = await portal_api.prices(q=five[0], limit=2, offset=4)
        beyond = await portal_api.prices(q=five[0], limit=2, offset=6)
        assert [prices_of(p) for p in (first, second, last, beyond)] == [[100, 200], [300, 400], [500], []]
        assert {p["total"] for p in (first, second, last, beyond)} == {5}
        assert (second["limit"], second["offset"]) == (2, 2)

    async def test_many_products_merge_into_one_order_across_pages(self, portal_api: Portal) -> None:
        word = token()
        products = [await portal_api.product(ingredient=f"{word}amol", name=f"Brand {n}") for n in range(4)]
        outlets = [await portal_api.outlet() for _ in range(3)]
        expected = []
        for p_index, product in enumerate(products):
            for o_index, outlet in enumerate(outlets):
                price = 1000 + ((p_index * 7 + o_index * 5) % 11) * 10
                await portal_api.listed(outlet, (product, price))
                expected.append(price)
        ascending = sorted(expected)
        pages = [prices_of(await portal_api.prices(q=word, limit=5, offset=o)) for o in range(0, 15, 5)]
        assert [p for page in pages for p in page] == ascending
        assert prices_of(await portal_api.prices(q=word, sort="-price", limit=12)) == ascending[::-1]
        assert prices_of(await portal_api.prices(q=word, province="01", offset=10)) == ascending[10:]

    async def test_browsing_without_a_query_is_sorted(
        self, portal_api: Portal, five: tuple[str, list[int]]
    ) -> None:
        ascending = prices_of(await portal_api.prices(limit=50))
        descending = prices_of(await portal_api.prices(limit=50, sort="-price"))
        assert ascending == sorted(ascending) and descending == sorted(descending, reverse=True)
        assert (await portal_api.prices())["total"] >= 5


class TestErrors:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"sort": "cheap"}, "sort"),
            ({"province": "1"}, "province"),
            ({"province": "HN"}, "province"),
            ({"category": "food"}, "category"),
            ({"kind": "shop"}, "kind"),
            ({"limit": 0}, "limit"),
            ({"limit": 101}, "limit"),
            ({"offset": -1}, "offset"),
            ({"offset": 10001}, "offset"),
            ({"q": "x" * 201}, "q"),
        ],
    )
    async def test_invalid_query_is_422_problem(
        self, portal_api: Portal, params: dict[str, Any], field: str
    ) -> None:
        r = await portal_api.client.get("/portal/api/v1/prices", params=params)
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"] == ["query", field]


class TestCaching:
    async def test_etag_and_not_modified(self, portal_api: Portal) -> None:
        outlet = await portal_api.outlet()
        product = await portal_api.product(ingredient=f"{token()}amol")
        await portal_api.listed(outlet, (product, 1000))
        url = f"/portal/api/v1/prices?q={product.registration_no}"
        first = await portal_api.client.get(url)
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert "public" in first.headers["cache-control"] and "max-age=60" in first.headers["cache-control"]
        again = await portal_api.client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        also = await portal_api.client.get(
            url, headers={"If-None-Match": f'"other", {etag.removeprefix("W/")}'}
        )
        assert also.status_code == 304
        await portal_api.listed(outlet, (product, 1100))
        changed = await portal_api.client.get(url, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert prices_of(changed.json()) == [1100]
