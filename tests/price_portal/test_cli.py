"""`erx prices import` and `erx demo seed-prices`, run as an operator would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from eprescribe import service as registry
from price_portal import seed
from tests.conftest import Harness
from tests.price_portal.conftest import Portal, token

ERX = str(Path(sys.executable).parent / "erx")


async def erx(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `erx` command against this harness's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERX_") and k != "DATABASE_URL"}
    env |= {"ERX_ENVIRONMENT": "test", "ERX_DATA_DIR": str(harness.settings.data_dir), "COLUMNS": "200"}
    if harness.settings.database_url:
        env["DATABASE_URL"] = harness.settings.database_url
    return await asyncio.to_thread(
        subprocess.run, [ERX, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


class TestImport:
    async def test_publishes_a_csv_for_an_outlet(
        self, portal_api: Portal, harness: Harness, tmp_path: Path
    ) -> None:
        word = token()
        outlet = await portal_api.outlet()
        a = await portal_api.product(ingredient=f"{word}amol")
        b = await portal_api.product(ingredient=f"{word}ine", unit="chai")
        await portal_api.listed(outlet, (a, 1000))
        price_list = tmp_path / "prices.csv"
        price_list.write_text(
            f"registration_no,price,unit\n{a.registration_no},1100,viên\n{b.registration_no},52000,chai\n"
        )
        done = await erx(
            harness, "prices", "import", str(price_list), "--outlet", outlet.connection_code.lower()
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 prices published" in done.stdout and "1 new, 1 changed" in done.stdout
        found = await portal_api.prices(q=word)
        assert sorted(i["price"] for i in found["items"]) == [1100, 52000]

    async def test_a_bad_row_refuses_the_whole_file(
        self, portal_api: Portal, harness: Harness, tmp_path: Path
    ) -> None:
        word = token()
        outlet = await portal_api.outlet()
        a = await portal_api.product(ingredient=f"{word}amol")
        price_list = tmp_path / "prices.csv"
        price_list.write_text(
            f"registration_no,price,unit\n{a.registration_no},1100,viên\nVD-0-0-NONE,500,viên\n{a.registration_no},12.5,hộp\n"
        )
        done = await erx(harness, "prices", "import", str(price_list), "--outlet", outlet.connection_code)
        assert done.returncode == 1
        out = done.stdout
        assert "nothing was applied" in out
        # Rows are named by their line in the file (the header is line 1).
        rows = [
            [cell.strip() for cell in line.split("│")[1:-1]]
            for line in out.splitlines()
            if line.startswith("│")
        ]
        assert rows == [
            ["3", "registration_no", "no such product in the national catalogue"],
            ["4", "price", "Input should be a valid integer"],
        ]
        assert (await portal_api.prices(q=word))["total"] == 0

    async def test_an_unknown_outlet_is_refused(self, harness: Harness, tmp_path: Path) -> None:
        price_list = tmp_path / "prices.csv"
        price_list.write_text("registration_no,price,unit\nX,1,viên\n")
        done = await erx(harness, "prices", "import", str(price_list), "--outlet", "01NTNOBODY")
        assert done.returncode == 1 and "No outlet" in done.stdout


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
