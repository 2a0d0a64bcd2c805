"""OAuth client credentials and signed access tokens."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlmodel import col

from eprescribe.registry.models import AdminClient, Facility
from kit.security import ClientKind, Principal
from kit.time import utcnow
from tests.conftest import Harness
from tests.factories import Api


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestTokenEndpoint:
    async def test_admin_gets_a_signed_expiring_token(self, api: Api, harness: Harness) -> None:
        r = await api.token("/api/v1/auth/token", api.admin_id, api.admin_secret)
        assert r.status_code == 200
        body = r.json()
        assert (
            body["token_type"] == "bearer" and body["expires_in"] == harness.settings.access_token_ttl_seconds
        )
        header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
        assert header["alg"] == "ES256"
        claims = jwt.decode(body["access_token"], harness.runtime.keyring.active, algorithms=["ES256"]).claims
        assert claims["kind"] == "admin" and claims["iss"] == harness.settings.issuer
        assert claims["exp"] > claims["iat"] and claims["aud"]

    async def test_wrong_secret_is_invalid_client(self, api: Api) -> None:
        r = await api.token("/api/v1/auth/token", api.admin_id, "wrong")
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"

    async def test_unknown_client_is_invalid_client(self, api: Api) -> None:
        r = await api.token("/api/v1/auth/token", "ZZZZZ", "whatever")
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"

    async def test_other_grant_types_are_refused(self, api: Api) -> None:
        r = await api.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "client_id": api.admin_id, "client_secret": api.admin_secret},
        )
        # RFC 6749 section 5.2: another grant is 400 unsupported_grant_type.
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"

    async def test_secrets_are_stored_only_as_argon2_hashes(self, api: Api, harness: Harness) -> None:
        facility = await api.facility()
        async with harness.runtime.database.sessionmaker() as session:
            stored = (
                await session.execute(
                    select(col(Facility.secret_hash)).where(
                        col(Facility.facility_code) == facility.facility_code
                    )
                )
            ).scalar_one()
            admin_hash = (
                await session.execute(
                    select(col(AdminClient.secret_hash)).where(col(AdminClient.client_id) == api.admin_id)
                )
            ).scalar_one()
        assert stored.startswith("$argon2id$") and facility.client_secret not in stored
        assert admin_hash.startswith("$argon2id$")


class TestTokenChecks:
    async def test_missing_token_is_401_problem(self, api: Api) -> None:
        r = await api.client.get("/api/v1/prescriptions/01001AAAAAAA-c")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"

    async def test_expired_token_is_refused(self, api: Api, harness: Harness) -> None:
        facility = await api.facility()
        old = harness.runtime.tokens.issue(
            Principal(ClientKind.FACILITY, facility.facility_code, 1), now=utcnow() - timedelta(hours=2)
        )
        r = await api.client.get(
            "/api/v1/prescriptions/01001AAAAAAA-c", headers={"Authorization": f"Bearer {old.access_token}"}
        )
        assert r.status_code == 401

    async def test_token_signed_by_a_foreign_key_is_refused(self, api: Api, harness: Harness) -> None:
        facility = await api.facility()
        foreign = ECKey.generate_key("P-256", private=True)
        now = int(utcnow().timestamp())
        forged = jwt.encode(
            {"alg": "ES256", "kid": harness.runtime.keyring.active_kid},
            {
                "iss": harness.settings.issuer,
                "aud": "erx-api",
                "sub": facility.facility_code,
                "kind": "facility",
                "ver": 1,
                "iat": now,
                "exp": now + 600,
            },
            foreign,
            algorithms=["ES256"],
        )
        r = await api.client.get(
            "/api/v1/prescriptions/01001AAAAAAA-c", headers={"Authorization": f"Bearer {forged}"}
        )
        assert r.status_code == 401

    async def test_unsigned_token_is_refused(self, api: Api, harness: Harness) -> None:
        facility = await api.facility()
        now = int(utcnow().timestamp())
        unsigned = ".".join(
            [
                b64({"alg": "none", "kid": harness.runtime.keyring.active_kid}),
                b64(
                    {
                        "iss": harness.settings.issuer,
                        "aud": "erx-api",
                        "sub": facility.facility_code,
                        "kind": "facility",
                        "ver": 1,
                        "iat": now,
                        "exp": now + 600,
                    }
                ),
                "",
            ]
        )
        r = await api.client.get(
            "/api/v1/prescriptions/01001AAAAAAA-c", headers={"Authorization": f"Bearer {unsigned}"}
        )
        assert r.status_code == 401

    async def test_facility_token_cannot_use_admin_endpoints(self, api: Api) -> None:
        facility = await api.facility()
        r = await api.client.post(
            "/api/v1/facilities", json={"name": "X", "province_code": "01"}, headers=facility.headers
        )
        assert r.status_code == 403

    async def test_admin_token_cannot_submit_prescriptions(self, api: Api) -> None:
        r = await api.client.post(
            "/api/v1/prescriptions", json={"jws": "a.b.c.d.e"}, headers=await api.admin_headers()
        )
        assert r.status_code == 403

    async def test_suspension_revokes_existing_tokens_at_once(self, api: Api) -> None:
        facility = await api.facility()
        probe = "/api/v1/prescriptions/" + facility.facility_code + "AAAAAAA-c"
        assert (await api.client.get(probe, headers=facility.headers)).status_code == 404
        r = await api.client.post(
            f"/api/v1/facilities/{facility.facility_code}/suspend", headers=await api.admin_headers()
        )
        assert r.status_code == 200 and r.json()["status"] == "suspended"
        assert (await api.client.get(probe, headers=facility.headers)).status_code == 401
        assert (
            await api.token("/api/v1/auth/token", facility.facility_code, facility.client_secret)
        ).status_code == 401
        await api.client.post(
            f"/api/v1/facilities/{facility.facility_code}/reinstate", headers=await api.admin_headers()
        )
        assert (await api.client.get(probe, headers=facility.headers)).status_code == 404
        await api.client.post(
            f"/api/v1/facilities/{facility.facility_code}/revoke", headers=await api.admin_headers()
        )
        assert (await api.client.get(probe, headers=facility.headers)).status_code == 401
        again = await api.client.post(
            f"/api/v1/facilities/{facility.facility_code}/reinstate", headers=await api.admin_headers()
        )
        assert again.status_code == 409
