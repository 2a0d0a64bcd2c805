"""The drug catalogue: adding products, searching, the shipped data and `erx drugs import`."""

from __future__ import annotations

import csv
from pathlib import Path

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.cli import read_catalogue_csv
from eprescribe.catalogue.cli import shipped_catalogue as catalogue_path
from tests.clients import erx_command
from tests.conftest import Harness
from tests.factories import Api, rand


class TestCatalogue:
    async def test_search_is_public_and_diacritic_blind(self, api: Api) -> None:
        tag = rand(5).lower()
        await api.product(
            name=f"Thuốc ho Bảo Thanh {tag}",
            ingredient=f"cao xuyên bối {tag}",
            dosage_form="siro",
            unit="chai",
        )
        for q in (f"thuoc ho {tag}", f"THUỐC HO {tag}", f"xuyen boi {tag}"):
            r = await api.client.get("/api/v1/drugs", params={"q": q})
            assert r.status_code == 200
            assert [d["name"] for d in r.json()["items"]] == [f"Thuốc ho Bảo Thanh {tag}"], q

    async def test_search_by_registration_number_and_category(self, api: Api) -> None:
        product = await api.product("supplement", price=None)
        r = await api.client.get(
            "/api/v1/drugs", params={"q": product.registration_no.lower(), "category": "supplement"}
        )
        assert r.json()["total"] == 1 and r.json()["items"][0]["declared_price"] is None

    async def test_creating_needs_admin_and_valid_fields(self, api: Api) -> None:
        r = await api.client.post("/api/v1/drugs", json={"registration_no": "VD-1-1"})
        assert r.status_code == 401
        r = await api.client.post(
            "/api/v1/drugs",
            json={
                "registration_no": "VD-99999-25",
                "name": "X",
                "active_ingredient": "x",
                "strength": "1mg",
                "dosage_form": "viên nén",
                "unit": "viên",
                "category": "candy",
                "declared_price": -5,
            },
            headers=await api.admin_headers(),
        )
        assert r.status_code == 422
        locs = [e["loc"] for e in r.json()["errors"]]
        assert ["body", "category"] in locs and ["body", "declared_price"] in locs

    async def test_duplicate_registration_number_is_409(self, api: Api) -> None:
        product = await api.product()
        r = await api.client.post(
            "/api/v1/drugs",
            json={
                "registration_no": product.registration_no,
                "name": "Y",
                "active_ingredient": "y",
                "strength": "1mg",
                "dosage_form": "viên nén",
                "unit": "viên",
                "category": "normal",
            },
            headers=await api.admin_headers(),
        )
        assert r.status_code == 409


class TestDemoCatalogue:
    def test_ships_300_products_in_every_category(self) -> None:
        rows = [row for _, row in read_catalogue_csv(catalogue_path())]
        assert len(rows) >= 300
        categories = {row["category"] for row in rows}
        assert categories == {"normal", "narcotic", "psychotropic", "precursor", "traditional", "supplement"}
        assert len({row["registration_no"] for row in rows}) == len(rows)

    async def test_imports_without_rejections(self, harness: Harness) -> None:
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            report = await catalogue.import_drugs(session, read_catalogue_csv(catalogue_path()))
        assert report.rejected == []
        assert report.added + report.updated >= 300


class TestImportCommand:
    def test_reports_rejected_rows_by_line(self, harness: Harness, tmp_path: Path) -> None:
        path = tmp_path / "catalogue.csv"
        tag = rand(6)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "registration_no",
                    "name",
                    "active_ingredient",
                    "strength",
                    "dosage_form",
                    "unit",
                    "packaging",
                    "manufacturer",
                    "country",
                    "category",
                    "declared_price",
                ]
            )
            writer.writerow(
                [f"VD-{tag}-1", "Good", "goodamol", "5mg", "viên nén", "viên", "", "", "", "normal", "1200"]
            )
            writer.writerow(
                [f"VD-{tag}-2", "Bad category", "x", "5mg", "viên nén", "viên", "", "", "", "candy", ""]
            )
            writer.writerow(
                [f"VD-{tag}-3", "Bad price", "x", "5mg", "viên nén", "viên", "", "", "", "normal", "abc"]
            )
        result = erx_command(harness.settings, "drugs", "import", str(path))
        out = result.stdout
        assert result.returncode == 1, out + result.stderr
        assert "1 added" in out and "2 rejected" in out
        assert "3" in out and "category" in out and "4" in out and "declared_price" in out
