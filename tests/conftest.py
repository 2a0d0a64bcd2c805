"""Fixtures: the real app over httpx, each test on a database of its own, SQLite and PostgreSQL.

The schema comes from the real migrations, once per engine, into a template; every test then
starts from a copy of it (a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL),
so no test sees another's rows, throttle counters or sessions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey

from eprescribe.registry import service as registry
from erx.app import create_app
from erx.migrate import upgrade_async
from kit.pii import PiiKeys
from kit.runtime import Runtime
from kit.settings import Settings
from tests.clients import Browsers, Gateway, gateway_for
from tests.factories import Api, Portal, World
from tests.live import live_server
from tests.pg import Cluster, start_cluster

ENGINES = ["sqlite", "postgresql"]
ADMIN_ID = "admin-tests"
ADMIN_SECRET = "tests-admin-secret-0123456789abcdef"
TEMPLATE = "erx_template"

# Cheap hashing keeps thousands of token requests fast; production keeps the defaults.
TEST_SETTINGS: dict[str, Any] = {
    "environment": "test",
    "argon2_time_cost": 1,
    "argon2_memory_cost_kib": 1024,
    "throttle_delay_seconds": 0.0,
    # The suite's one process starts hundreds of apps; kit/test_heap.py tests the tuning.
    "tune_garbage_collector": False,
    # Tests drive hundreds of concurrent requests through one process to test the database, not
    # the shedding; tests/kit/test_shedding.py sets tight limits of its own.
    "max_concurrent_requests": 10_000,
}


def make_settings(data_dir: Path, database_url: str | None, **overrides: Any) -> Settings:
    return Settings.model_validate(
        {**TEST_SETTINGS, "data_dir": data_dir, "DATABASE_URL": database_url, **overrides}
    )


class Harness:
    """A database of its own, the whole app on it, the tests' admin client and an httpx client."""

    def __init__(self, settings: Settings, on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        self.settings = settings
        self.runtime = Runtime.build(settings)
        self.app: FastAPI = create_app(runtime=self.runtime)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://erx.test"
        )
        self.admin_id = ADMIN_ID
        self.admin_secret = ADMIN_SECRET
        self.api = Api(self.client, self.admin_id, self.admin_secret)
        self._on_close = on_close

    @property
    def engine(self) -> str:
        return "sqlite" if self.settings.is_sqlite else "postgresql"

    async def close(self) -> None:
        await self.client.aclose()
        await self.runtime.dispose()
        if self._on_close is not None:
            await self._on_close()


class Databases:
    """Migrated templates (made on first use) and the fresh copies the tests run on."""

    def __init__(self, root: Path, signing_key: str, cluster: Callable[[], Cluster]) -> None:
        self.root = root
        self.signing_key = signing_key
        # One set of identity-number keys for every database of the run (like the signing key).
        self.identity_key = PiiKeys.generate().to_json()
        self._cluster = cluster
        self._templates: set[str] = set()
        self._numbers = itertools.count(1)

    async def _seed(self, settings: Settings) -> None:
        await upgrade_async(settings)
        runtime = Runtime.build(settings)
        try:
            async with runtime.database.sessionmaker() as session, session.begin():
                await registry.create_admin_client(
                    session, runtime.hasher, name="tests", client_id=ADMIN_ID, secret=ADMIN_SECRET
                )
        finally:
            await runtime.database.dispose()

    async def _template(self, engine: str) -> None:
        if engine in self._templates:
            return
        if engine == "sqlite":
            directory = self.root / "sqlite-template"
            settings = make_settings(
                directory, None, signing_key=self.signing_key, identity_key=self.identity_key
            )
            await self._seed(settings)
            # Fold the write-ahead log into the file, so a plain copy holds everything.
            with sqlite3.connect(directory / "erx.sqlite3") as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            cluster = self._cluster()
            await cluster.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"', f'CREATE DATABASE "{TEMPLATE}"')
            await self._seed(
                make_settings(
                    self.root / "pg-template",
                    cluster.url(TEMPLATE),
                    signing_key=self.signing_key,
                    identity_key=self.identity_key,
                )
            )
        self._templates.add(engine)

    async def settings(
        self, engine: str, data_dir: Path, **overrides: Any
    ) -> tuple[Settings, Callable[[], Awaitable[None]]]:
        """Settings on a fresh copy of the template, and how to drop that copy afterwards."""
        await self._template(engine)
        values = {"signing_key": self.signing_key, "identity_key": self.identity_key, **overrides}
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        if engine == "sqlite":
            template = self.root / "sqlite-template" / "erx.sqlite3"
            await asyncio.to_thread(shutil.copyfile, template, data_dir / "erx.sqlite3")

            async def nothing() -> None:
                return None

            return make_settings(data_dir, None, **values), nothing
        cluster = self._cluster()
        name = f"erx_test_{next(self._numbers)}"
        await cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')

        async def drop() -> None:
            await cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return make_settings(data_dir, cluster.url(name), **values), drop


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    yield cluster
    cluster.stop()


def new_signing_key() -> str:
    """A national signing key as ERX_SIGNING_KEY holds it: a private EC P-256 JWK with its kid."""
    key = ECKey.generate_key("P-256", private=True)
    return json.dumps({**key.as_dict(private=True), "kid": key.thumbprint()[:16]})


@pytest.fixture(scope="session")
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Databases:
    return Databases(
        tmp_path_factory.mktemp("templates"), new_signing_key(), lambda: request.getfixturevalue("pg_cluster")
    )


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(databases: Databases, tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Build harnesses with other settings (tight limits, short windows) in this test."""
    made: list[Harness] = []

    async def make(engine: str, **overrides: Any) -> Harness:
        settings, drop = await databases.settings(engine, tmp_path / f"{engine}-{len(made)}", **overrides)
        harness = Harness(settings, drop)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.close()


@pytest.fixture(params=ENGINES)
async def harness(request: pytest.FixtureRequest, make_harness: HarnessFactory) -> Harness:
    """The suite's main fixture: every test that uses it runs on both engines, each on its own database."""
    return await make_harness(str(request.param))


@pytest.fixture
async def pg_harness(make_harness: HarnessFactory) -> Harness:
    """PostgreSQL only: concurrency is only meaningful on the production engine."""
    return await make_harness("postgresql")


@pytest.fixture
def api(harness: Harness) -> Api:
    return harness.api


@pytest.fixture
def client(harness: Harness) -> httpx.AsyncClient:
    return harness.client


@pytest.fixture
async def browsers(harness: Harness) -> AsyncIterator[Browsers]:
    """Browsers on this test's app, each with its own cookies and address; closed afterwards."""
    found = Browsers(harness.app, [])
    yield found
    for browser in found.opened:
        await browser.close()


@pytest.fixture
def portal_api(harness: Harness) -> Portal:
    return Portal(harness)


@pytest.fixture
async def world(api: Api) -> World:
    """A facility with two prescribers (one allowed controlled drugs) and a product of each category."""
    return await api.world()


@pytest.fixture
async def gw(harness: Harness) -> Gateway:
    """A pharmacy calling the gateway from an address of its own."""
    return await gateway_for(harness)


# Tight limits, so throttling, expiry and the void window play out within a test's time.
GATEWAY_LIMITS: dict[str, Any] = {
    "throttle_free_failures": 2,
    "throttle_block_failures": 4,
    "throttle_window_seconds": 3,
    "throttle_address_factor": 2,
    "throttle_lookup_free_failures": 2,
    "throttle_lookup_block_failures": 4,
    # Lets a test sign a prescription issued long enough ago to be past valid_until.
    "issued_at_max_age_seconds": 30 * 24 * 3600,
    # Every dispense is already outside the void window.
    "dispense_void_window_seconds": 0,
}
CONSOLE_LIMITS: dict[str, Any] = {
    "throttle_free_failures": 2,
    "throttle_block_failures": 3,
    "throttle_address_factor": 4,
    "patient_view_free_failures": 1,
    "patient_view_block_failures": 3,
}


@pytest.fixture(params=ENGINES)
async def tuned(request: pytest.FixtureRequest, make_harness: HarnessFactory) -> Harness:
    """Both engines, with the gateway's limits tightened (GATEWAY_LIMITS)."""
    return await make_harness(str(request.param), **GATEWAY_LIMITS)


@pytest.fixture(params=ENGINES)
async def tuned_consoles(request: pytest.FixtureRequest, make_harness: HarnessFactory) -> Harness:
    """Both engines, with tight limits for wrong secrets and wrong dates of birth (CONSOLE_LIMITS)."""
    return await make_harness(str(request.param), **CONSOLE_LIMITS)


@pytest.fixture
async def tuned_browsers(tuned_consoles: Harness) -> AsyncIterator[Browsers]:
    found = Browsers(tuned_consoles.app, [])
    yield found
    for browser in found.opened:
        await browser.close()


@pytest.fixture
def live(pg_harness: Harness) -> Iterator[str]:
    """The real server (uvicorn, in a thread) on the PostgreSQL harness's database."""
    with live_server(pg_harness.settings) as base_url:
        yield base_url
