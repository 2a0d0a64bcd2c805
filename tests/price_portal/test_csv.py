"""GET /portal/api/v1/prices.csv: the same rows as open data, streamed chunk by chunk."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import text

from price_portal import service as portal
from price_portal.service import CSV_HEADER, PriceQuery
from tests.conftest import Harness, HarnessFactory
from tests.downloads import HeldDownload
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


@pytest.mark.postgres_only
class TestASlowReader:
    async def test_holds_no_connection_while_its_download_stays_open(
        self, make_harness: HarnessFactory
    ) -> None:
        # A pool of one connection for the app: the setting's least (which allows as many again
        # under bursts), less the one this test holds throughout. Past 2 s without one, a 503.
        harness = await make_harness("postgresql", database_pool_size=1, database_pool_timeout_seconds=2)
        portal_api = Portal(harness)
        word = token()
        product = await portal_api.product(ingredient=f"{word}amol")
        for price in (700, 300, 500):
            await portal_api.listed(await portal_api.outlet(), (product, price))
        async with harness.runtime.database.engine.connect() as ballast:
            await ballast.execute(text("SELECT 1"))
            download = HeldDownload(harness.app, "/portal/api/v1/prices.csv", params={"q": word})
            first = await download.open()
            assert download.status == 200 and download.headers["content-type"] == "text/csv; charset=utf-8"
            assert first.startswith(",".join(CSV_HEADER).encode())
            # The reader has the first chunk and reads no further; the app's one connection is free.
            other = await harness.client.get("/portal/api/v1/prices", params={"q": word})
            assert other.status_code == 200, other.text
            assert [i["price"] for i in other.json()["items"]] == [300, 500, 700]
            body = await download.finish()
        assert [int(row["price"]) for row in parse(body.decode())] == [300, 500, 700]

    async def test_with_no_connection_free_the_answer_is_a_503_not_a_cut_200(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = await make_harness("postgresql", database_pool_size=1, database_pool_timeout_seconds=1)
        engine = harness.runtime.database.engine
        async with engine.connect() as one, engine.connect() as two:
            for held in (one, two):
                await held.execute(text("SELECT 1"))
            download = HeldDownload(harness.app, "/portal/api/v1/prices.csv", params={"q": token()})
            await download.open()
            body = await download.finish()
        # The rows are read before the answer starts, so a failure is still an answer of its own.
        assert download.status == 503 and "retry-after" in download.headers
        assert download.headers["content-type"] == "application/problem+json"
        assert b"unavailable" in body
