"""`erx demo seed-prices`: synthetic outlets and listings for the demo and the benchmark."""

from __future__ import annotations

from eprescribe.registry import service as registry
from erx.demo import prices as seed
from tests.clients import erx
from tests.conftest import Harness


class TestSeed:
    async def test_generates_listings_with_history_and_is_repeatable(self, harness: Harness) -> None:
        first = await seed.seed_prices(harness.runtime, outlets=3, rows=120, seed=7)
        assert (first.outlets, first.listings) == (3, 120)
        assert first.history >= 120
        again = await seed.seed_prices(harness.runtime, outlets=3, rows=120, seed=7)
        assert (again.outlets_created, again.outlets, again.listings) == (0, 3, 120)
        async with harness.runtime.database.sessionmaker() as session:
            outlets = (await registry.pharmacies_with_code_prefix(session, seed.SEED_PREFIX))[:3]
        listed = 0
        for outlet in outlets:
            r = await harness.client.get(f"/portal/api/v1/outlets/{outlet.id}", params={"limit": 100})
            assert r.status_code == 200
            listed += r.json()["total"]
            # Narcotics and psychotropics only at outlets licensed for them.
            if not outlet.controlled_licence:
                assert {i["drug"]["category"] for i in r.json()["items"]}.isdisjoint(
                    {"narcotic", "psychotropic", "precursor"}
                )
        # Re-running replaces the same (outlet, product) pairs instead of adding rows.
        assert listed == 120

    async def test_the_command_shows_progress_and_totals(self, harness: Harness) -> None:
        done = await erx(harness, "demo", "seed-prices", "--outlets", "4", "--rows", "200")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "200 listings" in done.stdout and "Listings" in done.stdout
