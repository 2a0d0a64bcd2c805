"""Registry of facilities, prescribers and pharmacies, and the drug catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joserfc.jwk import ECKey

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
        self, api: Api, jwk: Mapping[str, object], facility_codes: list[str]
    ) -> tuple[int, dict[str, Any]]:
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
