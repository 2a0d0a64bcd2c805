"""The process answers, the database is reachable and the schema is documented."""

from __future__ import annotations

import httpx

from tests.conftest import Harness


class TestOperations:
    async def test_health_and_readiness(self, client: httpx.AsyncClient, harness: Harness) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == ("sqlite" if harness.engine == "sqlite" else "postgresql")

    async def test_openapi_documents_the_contract_paths(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        for path in ("/api/v1/auth/token", "/api/v1/prescriptions", "/api/v1/prescriptions/{code}/cancel"):
            assert path in paths

    async def test_jwks_publishes_only_public_p256_keys(self, client: httpx.AsyncClient) -> None:
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
        assert keys and all(k["crv"] == "P-256" and "d" not in k and k["kid"] for k in keys)

    async def test_unknown_path_is_problem_json(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/nope")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 404
