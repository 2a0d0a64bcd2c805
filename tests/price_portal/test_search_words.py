"""Search words on both engines: a typo in any word, ranking like a person would, exact totals."""

from __future__ import annotations

import re

import pytest

from tests.factories import Outlet, Portal, Product


def numbers(body: dict[str, object]) -> set[str]:
    items = body["items"]
    assert isinstance(items, list)
    return {i["drug"]["registration_no"] for i in items}


async def cards(portal_api: Portal, q: str) -> list[str]:
    """The registration numbers of the search page's product cards, in their order."""
    r = await portal_api.client.get("/search", params={"q": q})
    assert r.status_code == 200
    listed = r.text.split('class="grid cols-3 card-list product-cards"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<h3><a href="/products/([^"]+)">', listed)


async def syrups(portal_api: Portal) -> tuple[Outlet, dict[str, Product]]:
    """A small catalogue of cough remedies and decoctions, each listed at one outlet."""
    outlet = await portal_api.outlet()
    made = {
        "astex": await portal_api.product(
            category="traditional",
            name="Thuốc ho Astex",
            ingredient="húng chanh + núc nác",
            dosage_form="siro",
        ),
        "bao_thanh": await portal_api.product(
            category="traditional", name="Thuốc ho Bảo Thanh", ingredient="xuyên bối mẫu", dosage_form="siro"
        ),
        "prospan": await portal_api.product(
            category="traditional",
            name="Siro ho Prospan",
            ingredient="cao lá thường xuân",
            dosage_form="siro",
        ),
        "decoction": await portal_api.product(
            category="traditional",
            name="Thang Tiêu dao",
            ingredient="sài hồ + đương quy",
            dosage_form="thuốc thang",
        ),
        "panadol": await portal_api.product(name="Panadol Extra", ingredient="paracetamol + caffeine"),
        "panadol_more": await portal_api.product(name="Panadol Extra Advance", ingredient="paracetamol"),
        "panadol_plain": await portal_api.product(name="Panadol", ingredient="paracetamol"),
    }
    # The decoction is the cheapest: its price row comes first, its card does not.
    prices = {"astex": 38000, "bao_thanh": 45000, "prospan": 75000, "decoction": 20000}
    await portal_api.listed(outlet, *((p, prices.get(k, 1000)) for k, p in made.items()))
    return outlet, made


class TestATypoInAnyWord:
    @pytest.mark.parametrize(
        "q",
        [
            "thuoc ho astx",  # a letter missing from a five-letter word
            "thuoc ho asteex",  # one added
            "thuoc ho astez",  # one changed
            "thuoc ho atsex",  # two swapped
            "thuco ho astex",  # in the first word
            "thuoc hp astex",  # in a two-letter word
            "THUỐC HO ÁSTX",  # with diacritics and capitals
        ],
    )
    async def test_still_finds_the_product(self, portal_api: Portal, q: str) -> None:
        _, made = await syrups(portal_api)
        found = await portal_api.prices(q=q)
        assert found["fuzzy"] is True
        assert numbers(found) == {made["astex"].registration_no}
        assert found["total"] == 1

    async def test_of_several_words_each_slip_alone(self, portal_api: Portal) -> None:
        _, made = await syrups(portal_api)
        for q in ("siro ho prospn", "sirp ho prospan", "siro hi prospan", "panadl extra", "panadol extar"):
            first = await cards(portal_api, q)
            wanted = made["prospan" if "ro" in q else "panadol"].registration_no
            assert first[:1] == [wanted], q

    async def test_an_exact_match_leaves_typo_matches_out(self, portal_api: Portal) -> None:
        _, made = await syrups(portal_api)
        found = await portal_api.prices(q="prospan")
        assert found["fuzzy"] is False and numbers(found) == {made["prospan"].registration_no}


class TestRanking:
    async def test_names_holding_the_words_come_before_other_fields(self, portal_api: Portal) -> None:
        _, made = await syrups(portal_api)
        assert await cards(portal_api, "thuoc ho") == [
            made["astex"].registration_no,
            made["bao_thanh"].registration_no,
            made["decoction"].registration_no,
        ]
        # The price rows keep their own order: cheapest first.
        found = await portal_api.prices(q="thuoc ho")
        assert [i["drug"]["name"] for i in found["items"]] == [
            "Thang Tiêu dao",
            "Thuốc ho Astex",
            "Thuốc ho Bảo Thanh",
        ]

    async def test_the_exact_name_first_then_names_beginning_with_it(self, portal_api: Portal) -> None:
        _, made = await syrups(portal_api)
        expected = [made["panadol"].registration_no, made["panadol_more"].registration_no]
        assert await cards(portal_api, "panadol extra") == expected
        assert await cards(portal_api, "panadl extra") == expected
        assert (await cards(portal_api, "panadol"))[0] == made["panadol_plain"].registration_no


class TestExactTotals:
    async def test_with_and_without_q_and_by_every_filter(self, portal_api: Portal) -> None:
        hanoi = await portal_api.outlet(province="01", kind="pharmacy")
        saigon = await portal_api.outlet(province="79", kind="drugstore")
        cabinet = await portal_api.outlet(province="79", kind="cabinet")
        cough = await portal_api.product(
            category="traditional", name="Siro ho Prospan", ingredient="thường xuân"
        )
        pain = [await portal_api.product(name=f"Panadol {n}", ingredient="paracetamol") for n in range(3)]
        vitamin = await portal_api.product(
            category="supplement", name="Vitamin C", ingredient="acid ascorbic"
        )
        await portal_api.listed(hanoi, (cough, 70000), *((p, 1000 + i) for i, p in enumerate(pain)))
        await portal_api.listed(saigon, (cough, 72000), (pain[0], 1100), (vitamin, 50000))
        await portal_api.listed(cabinet, (pain[1], 1200))
        # Prices changed again: the same listings, not more.
        await portal_api.listed(hanoi, (cough, 69000), (pain[2], 990))
        expected = {
            (): 8,
            (("q", "panadol"),): 5,
            (("q", "panadl"),): 5,
            (("q", "siro ho"),): 2,
            (("province", "79"),): 4,
            (("province", "79"), ("kind", "cabinet")): 1,
            (("kind", "pharmacy"),): 4,
            (("category", "supplement"),): 1,
            (("category", "normal"), ("province", "79")): 2,
            (("q", "panadol"), ("province", "01")): 3,
            (("q", "vitamin"), ("province", "01")): 0,
        }
        for params, total in expected.items():
            for sort in ("price", "-price", "updated"):
                found = await portal_api.prices(**dict(params), sort=sort, limit=2)
                assert found["total"] == total, (params, sort)
                assert len(found["items"]) == min(2, total), (params, sort)
        past_the_end = await portal_api.prices(offset=50)
        assert past_the_end["total"] == 8 and past_the_end["items"] == []

    async def test_pages_add_up_to_the_total_in_order(self, portal_api: Portal) -> None:
        outlets = [await portal_api.outlet(province=p) for p in ("01", "79", "48")]
        products = [
            await portal_api.product(name=f"Omeprazol {n}", ingredient="omeprazole") for n in range(4)
        ]
        for i, outlet in enumerate(outlets):
            await portal_api.listed(outlet, *((p, 2000 + 100 * i + j) for j, p in enumerate(products)))
        for params in ({}, {"q": "omeprazol"}, {"q": "omeprazl"}):
            seen: list[int] = []
            for offset in range(0, 12, 5):
                page = await portal_api.prices(**params, limit=5, offset=offset)
                assert page["total"] == 12
                seen += [i["price"] for i in page["items"]]
            assert seen == sorted(seen) and len(seen) == 12

    async def test_a_suspended_outlet_leaves_the_total_and_comes_back(self, portal_api: Portal) -> None:
        kept = await portal_api.outlet()
        hidden = await portal_api.outlet()
        product = await portal_api.product(name="Smecta", ingredient="diosmectite")
        await portal_api.listed(kept, (product, 3800))
        await portal_api.listed(hidden, (product, 3500))
        assert (await portal_api.prices())["total"] == 2
        assert (
            await portal_api.admin(f"/api/v1/pharmacies/{hidden.connection_code}/suspend")
        ).status_code == 200
        for params in ({}, {"q": "smecta"}, {"q": "smecat"}, {"province": "01"}, {"category": "normal"}):
            found = await portal_api.prices(**params)
            assert found["total"] == 1 and [i["price"] for i in found["items"]] == [3800], params
        assert (
            await portal_api.admin(f"/api/v1/pharmacies/{hidden.connection_code}/reinstate")
        ).status_code == 200
        assert (await portal_api.prices(q="smecta"))["total"] == 2
