"""`/readyz`: traffic only when the database answers, the schema is current and the keys work."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import text

from erx.app import create_gateway_app
from kit.runtime import Runtime
from kit.security import KeyRing
from tests.conftest import Harness, HarnessFactory
from tests.pg import free_port


async def readyz(harness: Harness) -> httpx.Response:
    return await harness.client.get("/readyz")


class TestReady:
    async def test_ready_when_everything_holds(self, harness: Harness) -> None:
        r = await readyz(harness)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ready", "database": harness.engine}

    async def test_each_deployed_app_checks_the_schema_too(self, pg_harness: Harness) -> None:
        runtime = Runtime.build(pg_harness.settings)
        app = create_gateway_app(runtime=runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erx.test") as c:
            assert (await c.get("/readyz")).status_code == 200
            async with pg_harness.runtime.database.engine.begin() as connection:
                await connection.execute(text("UPDATE alembic_version SET version_num = '20261202_kit'"))
            r = await c.get("/readyz")
        await runtime.dispose()
        assert r.status_code == 503 and r.json()["check"] == "schema"


class TestNotReady:
    async def test_when_the_database_does_not_answer(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("postgresql")
        runtime = Runtime.build(
            harness.settings.model_copy(
                update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"}
            )
        )
        app = create_gateway_app(runtime=runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erx.test") as c:
            r = await c.get("/readyz")
        await runtime.dispose()
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["type"].endswith("/not-ready") and body["check"] == "database"
        assert body["detail"].startswith("database: ")

    async def test_when_the_schema_is_behind_the_migration_head(self, harness: Harness) -> None:
        async with harness.runtime.database.engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '20261202_kit'"))
        r = await readyz(harness)
        assert r.status_code == 503
        assert r.json()["check"] == "schema"
        assert "20261202_kit" in r.json()["detail"]

    async def test_when_the_signing_keys_no_longer_load(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("sqlite", signing_key=None)
        assert (await readyz(harness)).status_code == 200
        for path in (harness.settings.data_dir / "keys").glob("signing-*.jwk.json"):
            path.write_text("{not json")
        r = await readyz(harness)
        assert r.status_code == 503
        assert r.json()["check"] == "signing_keys"
        assert r.json()["detail"] == "signing_keys: the signing keys do not load (JSONDecodeError)"

    async def test_when_a_newer_key_is_configured_than_the_one_signing(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = await make_harness("sqlite", signing_key=None)
        KeyRing.rotate(harness.settings.data_dir / "keys")
        r = await readyz(harness)
        assert r.status_code == 503
        assert "restart" in r.json()["detail"]
        # The detail names the problem, never the key itself.
        assert '"d"' not in json.dumps(r.json())
