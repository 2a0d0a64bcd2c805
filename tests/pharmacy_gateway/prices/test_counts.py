"""The listing counts behind the portal's totals: kept by every publication, exact under concurrency."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import text

from tests.conftest import Harness
from tests.factories import Portal, Product


async def counts(harness: Harness) -> tuple[dict[tuple[int, str, str], int], dict[tuple[int, str, str], int]]:
    """(what the counts say, what counting the listings says), by (product, province, kind)."""
    async with harness.runtime.database.sessionmaker() as session:
        kept = await session.execute(
            text(
                "SELECT drug_id, province_code, outlet_kind, listings FROM price_drug_count WHERE listings > 0"
            )
        )
        counted = await session.execute(
            text(
                "SELECT drug_id, province_code, outlet_kind, count(*) FROM price_listing "
                "GROUP BY drug_id, province_code, outlet_kind"
            )
        )
        areas = await session.execute(
            text(
                "SELECT c.province_code, c.outlet_kind, c.listings, "
                "(SELECT count(*) FROM price_listing l WHERE l.province_code = c.province_code "
                "AND l.outlet_kind = c.outlet_kind) FROM price_count c"
            )
        )
        for province, kind, listings, real in areas:
            assert listings == real, (province, kind)
        return (
            {(d, p, k): n for d, p, k, n in kept},
            {(d, p, k): n for d, p, k, n in counted},
        )


class TestCountsFollowPublications:
    async def test_new_changed_and_repeated_prices(self, portal_api: Portal, harness: Harness) -> None:
        first = await portal_api.outlet(province="01", kind="pharmacy")
        second = await portal_api.outlet(province="79", kind="drugstore")
        products = [await portal_api.product(name=f"Cefixim {n}", ingredient="cefixime") for n in range(3)]
        await portal_api.listed(first, (products[0], 3000), (products[1], 3100))
        await portal_api.listed(first, (products[0], 2900), (products[2], 3300))
        await portal_api.listed(second, (products[0], 3000))
        await portal_api.listed(second, (products[0], 3000))
        kept, counted = await counts(harness)
        assert kept == counted and sum(kept.values()) == 4
        assert (await portal_api.prices(q="cefixim"))["total"] == 4


@pytest.mark.postgres_only
class TestConcurrentPublications:
    async def test_counts_stay_exact_and_nobody_deadlocks(self, pg_harness: Harness) -> None:
        portal_api = Portal(pg_harness)
        outlets = [
            await portal_api.outlet(province=p, kind=k)
            for p in ("01", "79")
            for k in ("pharmacy", "drugstore", "cabinet")
        ]
        products: list[Product] = [
            await portal_api.product(name=f"Amlodipin {n}", ingredient="amlodipine") for n in range(12)
        ]
        rng = random.Random(12)

        async def publish_rounds(outlet_index: int) -> list[int]:
            statuses = []
            for round_no in range(4):
                # Overlapping lists in shuffled order: new listings and changed ones, every outlet at once.
                chosen = rng.sample(products, 8)
                r = await portal_api.publish(
                    outlets[outlet_index], *((p, 1000 + 10 * round_no + outlet_index) for p in chosen)
                )
                statuses.append(r.status_code)
            return statuses

        answers = await asyncio.gather(*(publish_rounds(i) for i in range(len(outlets))))
        assert all(status == 200 for statuses in answers for status in statuses), answers
        kept, counted = await counts(pg_harness)
        assert kept == counted
        listed = sum(counted.values())
        assert (await portal_api.prices())["total"] == listed
        assert (await portal_api.prices(q="amlodipin"))["total"] == listed
        assert (await portal_api.prices(province="79", kind="cabinet"))["total"] == sum(
            n for (_, p, k), n in counted.items() if (p, k) == ("79", "cabinet")
        )
