"""Registry of facilities, prescribers and pharmacies, and the drug catalogue."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from joserfc.jwk import ECKey

from eprescribe import service as registry
from eprescribe.cli import read_catalogue_csv
from erx.demo import catalogue_path
from tests.conftest import Harness
from tests.factories import Api, rand


class TestFacilities:
    async def test_generated_code_has_five_characters_and_secret_once(self, api: Api) -> None:
        r = await api.client.post(
            "/api/v1/facilities",
            json={"name": "Bệnh viện E", "province_code": "01"},
            headers=await api.admin_headers(),
        )
        assert r.status_code == 201
        body = r.json()
        assert len(body["facility_code"]) == 5 and body["facility_code"].isalnum()
        assert len(body["client_secret"]) >= 32

    async def test_chosen_code_is_kept_and_unique(self, api: Api) -> None:
        code = rand(5)
        first = await api.client.post(
            "/api/v1/facilities",
            json={"name": "A", "province_code": "79", "facility_code": code},
            headers=await api.admin_headers(),
        )
        assert first.status_code == 201 and first.json()["facility_code"] == code
        second = await api.client.post(
            "/api/v1/facilities",
            json={"name": "B", "province_code": "79", "facility_code": code},
            headers=await api.admin_headers(),
        )
        assert second.status_code == 409

    async def test_invalid_fields_are_named(self, api: Api) -> None:
        r = await api.client.post(
            "/api/v1/facilities",
            json={"name": "A", "province_code": "1", "facility_code": "ab"},
            headers=await api.admin_headers(),
        )
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        locs = [e["loc"] for e in r.json()["errors"]]
        assert ["body", "province_code"] in locs and ["body", "facility_code"] in locs


class TestPrescribers:
    async def _register(
        self, api: Api, jwk: dict[str, object], facility_codes: list[str]
    ) -> tuple[int, dict[str, object]]:
        r = await api.client.post(
            "/api/v1/prescribers",
            json={
                "full_name": "BS. Lê",
                "license_no": f"{rand(6)}/CCHN",
                "facility_codes": facility_codes,
                "public_jwk": jwk,
                "controlled_allowed": False,
            },
            headers=await api.admin_headers(),
        )
        return r.status_code, r.json()

    async def test_registers_public_p256_key_at_facilities(self, api: Api) -> None:
        facility = await api.facility()
        status, body = await self._register(
            api, ECKey.generate_key("P-256").as_dict(private=False), [facility.facility_code]
        )
        assert status == 201 and str(body["prescriber_id"]).startswith("BS")

    async def test_refuses_private_key(self, api: Api) -> None:
        facility = await api.facility()
        status, body = await self._register(
            api, ECKey.generate_key("P-256", private=True).as_dict(private=True), [facility.facility_code]
        )
        assert status == 422 and body["errors"][0]["loc"] == ["body", "public_jwk"]

    async def test_refuses_other_curves(self, api: Api) -> None:
        facility = await api.facility()
        status, body = await self._register(
            api, ECKey.generate_key("P-384").as_dict(private=False), [facility.facility_code]
        )
        assert status == 422 and body["errors"][0]["loc"] == ["body", "public_jwk"]

    async def test_refuses_unknown_facility(self, api: Api) -> None:
        status, body = await self._register(
            api, ECKey.generate_key("P-256").as_dict(private=False), ["ZZ9Z9"]
        )
        assert status == 422 and body["errors"][0]["loc"] == ["body", "facility_codes", 0]


class TestPharmacies:
    async def test_connection_code_and_secret(self, api: Api) -> None:
        r = await api.client.post(
            "/api/v1/pharmacies",
            json={
                "name": "Nhà thuốc Hạnh Phúc",
                "kind": "drugstore",
                "province_code": "48",
                "address": "1 Lê Duẩn",
                "controlled_licence": False,
            },
            headers=await api.admin_headers(),
        )
        assert r.status_code == 201
        assert r.json()["connection_code"].startswith("48QT")

    async def test_unknown_kind_is_422(self, api: Api) -> None:
        r = await api.client.post(
            "/api/v1/pharmacies",
            json={"name": "X", "kind": "supermarket", "province_code": "48", "address": "1"},
            headers=await api.admin_headers(),
        )
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "kind"]

    async def test_status_changes(self, api: Api) -> None:
        pharmacy = await api.pharmacy()
        admin = await api.admin_headers()
        assert (
            await api.client.post(f"/api/v1/pharmacies/{pharmacy.connection_code}/suspend", headers=admin)
        ).json()["status"] == "suspended"
        assert (
            await api.client.post(f"/api/v1/pharmacies/{pharmacy.connection_code}/reinstate", headers=admin)
        ).json()["status"] == "active"
        assert (
            await api.client.post(f"/api/v1/pharmacies/{pharmacy.connection_code}/revoke", headers=admin)
        ).json()["status"] == "revoked"
        assert (
            await api.client.post(f"/api/v1/pharmacies/{pharmacy.connection_code}/suspend", headers=admin)
        ).status_code == 409
        assert (
            await api.client.post("/api/v1/pharmacies/01NTNOPE00/suspend", headers=admin)
        ).status_code == 404


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
            report = await registry.import_drugs(session, read_catalogue_csv(catalogue_path()))
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
        env = {**os.environ, "ERX_DATA_DIR": str(harness.settings.data_dir)}
        if harness.settings.database_url:
            env["DATABASE_URL"] = harness.settings.database_url
        else:
            env.pop("DATABASE_URL", None)
        result = subprocess.run(
            [sys.executable, "-m", "erx", "drugs", "import", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        out = result.stdout
        assert result.returncode == 1, out + result.stderr
        assert "1 added" in out and "2 rejected" in out
        assert "3" in out and "category" in out and "4" in out and "declared_price" in out
