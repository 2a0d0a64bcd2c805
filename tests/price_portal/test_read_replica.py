"""READ_DATABASE_URL: the portal's public reads go there; writes and the patient view stay on the primary."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import HarnessFactory
from tests.factories import Portal, token


class TestReadDatabase:
    async def test_public_reads_come_from_the_read_database(self, make_harness: HarnessFactory) -> None:
        # Another database stands in for a replica that has not caught up: a price published
        # on the primary does not show until the read database has it.
        stale = await make_harness("postgresql")
        harness = await make_harness("postgresql", READ_DATABASE_URL=stale.settings.database_url)
        portal = Portal(harness)
        word = token()
        product = await portal.product(name=f"Thuốc {word}")
        outlet = await portal.outlet()
        await portal.listed(outlet, (product, 12_000))

        assert (await portal.prices(q=word))["total"] == 0
        page = await harness.client.get("/search", params={"q": word})
        assert page.status_code == 200 and "12.000" not in page.text
        csv = await harness.client.get("/portal/api/v1/prices.csv", params={"q": word})
        assert csv.text.count("\n") == 1, "header only"
        async with harness.runtime.database.sessionmaker() as session:
            on_primary = await session.execute(text("SELECT count(*) FROM price_listing WHERE price = 12000"))
        assert on_primary.scalar_one() == 1

    async def test_without_it_reads_use_the_primary(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("sqlite")
        assert harness.runtime.read_database is harness.runtime.database
        portal = Portal(harness)
        word = token()
        product = await portal.product(name=f"Thuốc {word}")
        await portal.listed(await portal.outlet(), (product, 9_000))
        assert (await portal.prices(q=word))["total"] == 1
