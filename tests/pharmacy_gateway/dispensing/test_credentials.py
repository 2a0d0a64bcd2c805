"""Connection codes: pharmacy tokens, refusals of other kinds, suspension, revocation, rotation."""

from __future__ import annotations

import base64
import json

from tests.clients import gateway_for
from tests.conftest import Harness
from tests.factories import Api


def claims_of(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


class TestTokenEndpoint:
    async def test_connection_code_and_secret_get_a_pharmacy_token(self, harness: Harness) -> None:
        gw = await gateway_for(harness)
        r = await gw.token()
        assert r.status_code == 200, r.text
        body = r.json()
        assert (
            body["token_type"] == "bearer" and body["expires_in"] == harness.settings.access_token_ttl_seconds
        )
        claims = claims_of(body["access_token"])
        assert claims["kind"] == "pharmacy" and claims["sub"] == gw.pharmacy.connection_code

    async def test_connection_code_is_case_insensitive(self, harness: Harness) -> None:
        gw = await gateway_for(harness)
        r = await gw.client.post(
            "/gateway/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": f"  {gw.pharmacy.connection_code.lower()} ",
                "client_secret": gw.pharmacy.client_secret,
            },
        )
        assert r.status_code == 200, r.text

    async def test_wrong_secret_is_invalid_client(self, harness: Harness) -> None:
        gw = await gateway_for(harness)
        r = await gw.token("not-the-secret")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["error"] == "invalid_client"

    async def test_unknown_connection_code_is_invalid_client(self, harness: Harness) -> None:
        gw = await gateway_for(harness)
        r = await gw.client.post(
            "/gateway/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": "01NTZZZZZZ", "client_secret": "x"},
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"

    async def test_other_grant_types_are_refused(self, harness: Harness) -> None:
        gw = await gateway_for(harness)
        r = await gw.client.post(
            "/gateway/v1/auth/token",
            data={
                "grant_type": "password",
                "client_id": gw.pharmacy.connection_code,
                "client_secret": gw.pharmacy.client_secret,
            },
        )
        # RFC 6749 section 5.2: another grant is 400 unsupported_grant_type, described.
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
        assert r.json()["error_description"]

    async def test_facility_credentials_do_not_open_the_gateway(self, harness: Harness, api: Api) -> None:
        facility = await api.facility()
        r = await api.token("/gateway/v1/auth/token", facility.facility_code, facility.client_secret)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"

    async def test_pharmacy_credentials_do_not_open_the_core(self, harness: Harness, api: Api) -> None:
        gw = await gateway_for(harness)
        r = await api.token("/api/v1/auth/token", gw.pharmacy.connection_code, gw.pharmacy.client_secret)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"


class TestKindsOfToken:
    async def test_missing_token_is_401(self, harness: Harness) -> None:
        gw = await gateway_for(harness)
        r = await gw.client.get("/gateway/v1/dispenses")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"

    async def test_facility_token_is_refused_by_the_gateway(self, harness: Harness, api: Api) -> None:
        facility = await api.facility()
        gw = await gateway_for(harness)
        for method, path in (
            ("GET", "/gateway/v1/prescriptions/01001AAAAAAA-c"),
            ("GET", "/gateway/v1/dispenses"),
        ):
            r = await gw.client.request(method, path, headers=facility.headers)
            assert r.status_code == 403, (path, r.text)

    async def test_admin_token_is_refused_by_the_gateway(self, harness: Harness, api: Api) -> None:
        gw = await gateway_for(harness)
        r = await gw.client.get("/gateway/v1/dispenses", headers=await api.admin_headers())
        assert r.status_code == 403

    async def test_pharmacy_token_is_refused_by_facility_and_admin_endpoints(
        self, harness: Harness, api: Api
    ) -> None:
        w = await api.world()
        p = await api.prescribe(w)
        gw = await gateway_for(harness)
        r = await api.client.get(f"/api/v1/prescriptions/{p['code']}", headers=gw.headers)
        assert r.status_code == 403
        r = await api.client.get(f"/api/v1/prescriptions/{p['code']}/access-log", headers=gw.headers)
        assert r.status_code == 403
        r = await api.client.post(
            "/api/v1/facilities", json={"name": "X", "province_code": "01"}, headers=gw.headers
        )
        assert r.status_code == 403


class TestStatusChanges:
    async def _admin(self, api: Api, code: str, action: str) -> None:
        r = await api.client.post(f"/api/v1/pharmacies/{code}/{action}", headers=await api.admin_headers())
        assert r.status_code == 200, r.text

    async def test_suspension_refuses_new_and_held_tokens_at_once(self, harness: Harness, api: Api) -> None:
        gw = await gateway_for(harness)
        assert (await gw.history()).status_code == 200
        await self._admin(api, gw.pharmacy.connection_code, "suspend")
        assert (await gw.history()).status_code == 401
        assert (await gw.token()).status_code == 401
        await self._admin(api, gw.pharmacy.connection_code, "reinstate")
        # The token held before the suspension carries the same credentials version: it works again.
        assert (await gw.history()).status_code == 200
        assert (await gw.token()).status_code == 200

    async def test_revocation_refuses_new_and_held_tokens_for_good(self, harness: Harness, api: Api) -> None:
        gw = await gateway_for(harness)
        await self._admin(api, gw.pharmacy.connection_code, "revoke")
        assert (await gw.history()).status_code == 401
        assert (await gw.lookup("01001AAAAAAA-c")).status_code == 401
        r = await gw.token()
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = await api.client.post(
            f"/api/v1/pharmacies/{gw.pharmacy.connection_code}/reinstate", headers=await api.admin_headers()
        )
        assert r.status_code == 409


class TestSecretRotation:
    async def test_old_secret_and_old_tokens_fail_the_new_secret_works(
        self, harness: Harness, api: Api
    ) -> None:
        gw = await gateway_for(harness)
        old_token = gw.pharmacy.token
        r = await api.client.post(
            f"/api/v1/pharmacies/{gw.pharmacy.connection_code.lower()}/rotate-secret",
            headers=await api.admin_headers(),
        )
        assert r.status_code == 200, r.text
        new_secret = r.json()["client_secret"]
        assert new_secret != gw.pharmacy.client_secret
        assert (await gw.history()).status_code == 401
        assert (await gw.token()).status_code == 401
        r = await gw.token(new_secret)
        assert r.status_code == 200
        gw.pharmacy.token = r.json()["access_token"]
        assert gw.pharmacy.token != old_token
        assert (await gw.history()).status_code == 200

    async def test_only_the_health_department_rotates(self, harness: Harness, api: Api) -> None:
        gw = await gateway_for(harness)
        r = await gw.client.post(
            f"/api/v1/pharmacies/{gw.pharmacy.connection_code}/rotate-secret", headers=gw.headers
        )
        assert r.status_code == 403
        assert (await gw.token()).status_code == 200
