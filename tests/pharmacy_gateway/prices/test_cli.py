"""`erx prices import`: an outlet's price list published from a CSV file, as an operator would."""

from __future__ import annotations

from pathlib import Path

from tests.clients import erx
from tests.conftest import Harness
from tests.factories import Portal, token


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
