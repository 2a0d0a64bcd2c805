"""GET /portal/api/v1/prices.csv: the same rows as open data, streamed chunk by chunk."""

from __future__ import annotations

import csv
import io

from price_portal import service as portal
from price_portal.service import CSV_HEADER, PriceQuery
from tests.conftest import Harness
from tests.factories import Portal, token


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


class TestExport:
    async def test_same_rows_as_the_json_in_the_same_order(self, portal_api: Portal) -> None:
        word = token()
        outlets = [await portal_api.outlet(province=p) for p in ("01", "79", "01")]
        a = await portal_api.product(name=f'Cốm {word}, "vị cam"', ingredient=f"{word}amol")
        b = await portal_api.product(ingredient=f"{word}ine")
        for outlet, (pa, pb) in zip(outlets, ((900, 1500), (700, 1700), (800, 1600)), strict=True):
            await portal_api.listed(outlet, (a, pa), (b, pb))
        for params in (
            {"q": word},
            {"q": word, "sort": "-price"},
            {"q": word, "province": "01", "sort": "updated"},
        ):
            r = await portal_api.client.get("/portal/api/v1/prices.csv", params=params)
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/csv; charset=utf-8"
            assert "attachment" in r.headers["content-disposition"]
            assert "max-age" in r.headers["cache-control"]
            rows = parse(r.text)
            as_json = await portal_api.prices(**params, limit=100)
            assert len(rows) == as_json["total"]
            assert [
                (row["registration_no"], int(row["outlet_id"]), int(row["price"]), row["updated_at"])
                for row in rows
            ] == [
                (i["drug"]["registration_no"], i["outlet"]["id"], i["price"], i["updated_at"])
                for i in as_json["items"]
            ]
        everything = parse(
            (await portal_api.client.get("/portal/api/v1/prices.csv", params={"q": word})).text
        )
        assert list(everything[0]) == list(CSV_HEADER)
        assert everything[0]["name"] == f'Cốm {word}, "vị cam"'
        assert everything[0]["unit"] == "viên" and everything[0]["category"] == "normal"

    async def test_a_query_matching_nothing_gives_the_header_alone(self, portal_api: Portal) -> None:
        r = await portal_api.client.get("/portal/api/v1/prices.csv", params={"q": f"qq{token()}xx"})
        assert r.status_code == 200
        assert r.text.splitlines() == [",".join(CSV_HEADER)]

    async def test_invalid_filters_are_422(self, portal_api: Portal) -> None:
        r = await portal_api.client.get("/portal/api/v1/prices.csv", params={"sort": "random"})
        assert r.status_code == 422

    async def test_streams_in_chunks_without_losing_or_repeating_rows(
        self, portal_api: Portal, harness: Harness
    ) -> None:
        word = token()
        product = await portal_api.product(ingredient=f"{word}amol")
        outlets = [await portal_api.outlet() for _ in range(7)]
        # Ties on price make the keyset order lean on the id as well.
        for outlet, price in zip(outlets, (500, 300, 300, 800, 300, 100, 500), strict=True):
            await portal_api.listed(outlet, (product, price))
        for sort in ("price", "-price", "updated"):
            query = PriceQuery(q=word, sort=sort)
            chunks = [c async for c in portal.export_csv(harness.runtime.database, query, chunk_size=2)]
            # The header, then one chunk per two rows: never more than a chunk in memory.
            assert len(chunks) == 1 + 4
            assert all(len(c.splitlines()) <= 2 for c in chunks[1:])
            whole = (
                await portal_api.client.get("/portal/api/v1/prices.csv", params={"q": word, "sort": sort})
            ).text
            assert "".join(chunks) == whole
            assert len(parse(whole)) == 7
