"""Fixtures: the real app over httpx, on SQLite and on a throwaway PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from eprescribe import service as registry
from erx.app import create_app
from erx.migrate import upgrade_async
from erx.runtime import Runtime
from erx.settings import Settings
from tests.factories import Api
from tests.pg import Cluster, create_database, start_cluster

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    yield cluster
    cluster.stop()


def make_settings(data_dir: Path, database_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "DATABASE_URL": database_url,
        # Cheap hashing keeps thousands of token requests fast; production keeps the defaults.
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "throttle_delay_seconds": 0.0,
        **overrides,
    }
    return Settings.model_validate(values)


async def _settings_for(
    engine: str, name: str, tmp: Path, cluster: Cluster | None, **overrides: Any
) -> Settings:
    if engine == "sqlite":
        return make_settings(tmp, None, **overrides)
    assert cluster is not None
    return make_settings(tmp, await create_database(cluster, name), **overrides)


class Harness:
    """A migrated database, the app on it, an admin client and an httpx client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime.build(settings)
        self.app: FastAPI = create_app(runtime=self.runtime)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://erx.test"
        )
        self.admin_id = f"admin-{secrets.token_hex(4)}"
        self.admin_secret = secrets.token_urlsafe(24)
        self.api = Api(self.client, self.admin_id, self.admin_secret)

    @property
    def engine(self) -> str:
        return "sqlite" if self.settings.is_sqlite else "postgresql"

    async def start(self) -> Harness:
        await upgrade_async(self.settings)
        async with self.runtime.database.sessionmaker() as session, session.begin():
            await registry.create_admin_client(
                session, self.runtime.hasher, name="tests", client_id=self.admin_id, secret=self.admin_secret
            )
        return self

    async def close(self) -> None:
        await self.client.aclose()
        await self.runtime.database.dispose()


@pytest.fixture(scope="session", params=ENGINES)
async def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """The suite's main fixture: every test that uses it runs on both engines."""
    engine = str(request.param)
    cluster = request.getfixturevalue("pg_cluster") if engine == "postgresql" else None
    settings = await _settings_for(engine, "erx_test", tmp_path_factory.mktemp(engine), cluster)
    h = await Harness(settings).start()
    yield h
    await h.close()


@pytest.fixture(scope="session")
async def pg_harness(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    """PostgreSQL only: concurrency is only meaningful on the production engine."""
    settings = await _settings_for(
        "postgresql", "erx_concurrency", tmp_path_factory.mktemp("pgc"), pg_cluster
    )
    h = await Harness(settings).start()
    yield h
    await h.close()


@pytest.fixture
def api(harness: Harness) -> Api:
    return harness.api


@pytest.fixture
def client(harness: Harness) -> httpx.AsyncClient:
    return harness.client
