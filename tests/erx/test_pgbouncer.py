"""Transaction pooling through the machine's PgBouncer (Debian 12: 1.18, no prepared-statement tracking).

With `ERX_DATABASE_PGBOUNCER=true` asyncpg keeps no statement cache and names every prepared
statement uniquely, so the smoke flows work whichever server connection each transaction gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.conftest import Harness, HarnessFactory
from tests.factories import Portal, dispense_body, line, prescribe, token
from tests.pg import Cluster
from tests.pgbouncer import Bouncer, pgbouncer, version

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def bouncer(pg_cluster: Cluster) -> Iterator[Bouncer]:
    with pgbouncer(pg_cluster, pool_size=3) as found:
        yield found


async def through(harness: Harness, bouncer: Bouncer, **settings: object) -> Harness:
    database = str(harness.settings.database_url).rsplit("/", 1)[1]
    pooled = harness.settings.model_copy(update={"database_url": bouncer.url(database), **settings})
    return Harness(pooled)


class TestThroughPgBouncer:
    async def test_the_smoke_flows_in_transaction_mode(
        self, make_harness: HarnessFactory, bouncer: Bouncer
    ) -> None:
        direct = await make_harness("postgresql")
        pooled = await through(direct, bouncer, database_pgbouncer=True, database_pool_size=8)
        try:
            api = pooled.api
            w = await api.world()
            pharmacy = await api.pharmacy()
            assert pharmacy.token, "the pharmacy's token through the pooler"
            codes = [await prescribe(api, w) for _ in range(6)]
            product = w.products["normal"]

            async def lookup_and_dispense(code: str, round_no: int) -> tuple[int, int]:
                looked = await pooled.client.get(
                    f"/gateway/v1/prescriptions/{code}", headers=pharmacy.headers
                )
                sold = await pooled.client.post(
                    f"/gateway/v1/prescriptions/{code}/dispenses",
                    json=dispense_body(line(1, product.registration_no, 2)),
                    headers={**pharmacy.headers, "Idempotency-Key": f"pgb-{code}-{round_no}"},
                )
                return looked.status_code, sold.status_code

            # Concurrent requests on 8 client connections over 3 server connections: every
            # transaction may land on a server another client's statements were prepared on.
            for round_no in range(3):
                results = await asyncio.gather(*(lookup_and_dispense(code, round_no) for code in codes))
                assert results == [(200, 201)] * len(codes)
            view = await pooled.client.get(f"/api/v1/prescriptions/{codes[0]}", headers=w.facility.headers)
            assert view.json()["items"][0]["dispensed"] == 6

            portal = Portal(pooled)
            word = token()
            listed = await portal.product(name=f"Siro {word}")
            outlet = await portal.outlet()
            await portal.listed(outlet, (listed, 31_000))
            found = await portal.prices(q=word)
            assert found["total"] == 1 and found["items"][0]["price"] == 31_000
            assert (await pooled.client.get("/readyz")).status_code == 200
        finally:
            await pooled.close()

    async def test_the_machines_pgbouncer_needs_the_setting(
        self, make_harness: HarnessFactory, bouncer: Bouncer
    ) -> None:
        """Without it, asyncpg's cached prepared statements meet the wrong server connection."""
        if tuple(int(p) for p in version().split(".")[:2]) >= (1, 21):
            pytest.skip("PgBouncer >= 1.21 can track prepared statements (max_prepared_statements)")
        direct = await make_harness("postgresql")
        pooled = await through(direct, bouncer, database_pgbouncer=False, database_pool_size=8)
        try:
            failures = 0
            for _ in range(5):
                results = await asyncio.gather(
                    *(pooled.client.get("/portal/api/v1/prices", params={"q": "para"}) for _ in range(12)),
                    return_exceptions=True,
                )
                failures += sum(1 for r in results if isinstance(r, BaseException) or r.status_code >= 500)
            assert failures > 0
        finally:
            await pooled.close()
