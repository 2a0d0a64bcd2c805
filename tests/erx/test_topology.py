"""The services apart, as deployed: a primary with a streaming replica, the core, the portal on the
replica and two gateways, each its own uvicorn process on a loopback port.

Traffic goes through both gateways; one is killed (SIGKILL) in the middle of it. Every dispense
answered 201 is in the database exactly once, and a client that lost its answer and retried with
the same Idempotency-Key on the other gateway converges on one dispense. A price published on
the primary shows on the portal only once the replica has replayed it.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_SECRET
from tests.factories import Api, World, dispense_body, line, prescribe, token
from tests.pg import Cluster, free_port, start_cluster, start_standby
from tests.processes import deployment_environment, until_ready

pytestmark = [pytest.mark.postgres_only, pytest.mark.timeout(150)]

DATABASE = "erx"
PRESCRIPTIONS = 24
DISPENSES_EACH = 3


@dataclass
class Replicated:
    primary: Cluster
    standby: Cluster

    async def sql(self, cluster: Cluster, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            host=cluster.host, port=cluster.port, user=cluster.user, database=DATABASE
        )
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def clusters() -> Iterator[Replicated]:
    primary = start_cluster(own=True)
    standby: Cluster | None = None
    try:
        asyncio.run(primary.execute(f'CREATE DATABASE "{DATABASE}"'))
        standby = start_standby(primary)
        yield Replicated(primary, standby)
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Topology:
    replicated: Replicated
    core: Service
    portal: Service
    gateways: list[Service]
    services: list[Service] = field(default_factory=list)


def _start(name: str, factory: str, env: dict[str, str], root: Path) -> Service:
    port = free_port()
    log = root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                factory,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-proxy-headers",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Service(name, port, process, log)


@pytest.fixture(scope="module")
async def topology(clusters: Replicated, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    primary_url = clusters.primary.url(DATABASE)
    base = await deployment_environment(root, primary_url)

    def env(name: str, **extra: str) -> dict[str, str]:
        (root / name).mkdir(exist_ok=True)
        return {**base, "ERX_DATA_DIR": str(root / name), **extra}

    core = _start("core", "erx.app:create_core_app", env("core"), root)
    portal = _start(
        "portal",
        "erx.app:create_portal_app",
        env("portal", READ_DATABASE_URL=clusters.standby.url(DATABASE)),
        root,
    )
    gateways = [_start(f"gateway-{n}", "erx.app:create_gateway_app", env(f"gateway-{n}"), root) for n in "ab"]
    services = [core, portal, *gateways]
    try:
        deadline = time.monotonic() + 60
        await asyncio.gather(
            *(until_ready(s.url, s.process, deadline, name=s.name, log=s.log) for s in services)
        )
        yield Topology(clusters, core, portal, gateways, services)
    finally:
        for service in services:
            if service.process.poll() is None:
                service.process.terminate()
        for service in services:
            try:
                service.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()


@dataclass
class Sale:
    code: str
    key: str
    answered_by: list[str] = field(default_factory=list)
    dispense_id: str | None = None


async def _gateway_token(client: httpx.AsyncClient, code: str, secret: str) -> str:
    r = await client.post(
        "/gateway/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": code, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


class TestSeparateServices:
    async def test_traffic_through_both_gateways_survives_one_being_killed(self, topology: Topology) -> None:
        async with (
            httpx.AsyncClient(base_url=topology.core.url, timeout=10) as core,
            httpx.AsyncClient(base_url=topology.gateways[0].url, timeout=10) as gateway_a,
            httpx.AsyncClient(base_url=topology.gateways[1].url, timeout=10) as gateway_b,
        ):
            api = Api(core, ADMIN_ID, ADMIN_SECRET)
            w: World = await api.world()
            pharmacy = await api.pharmacy()
            headers = {
                "Authorization": f"Bearer {await _gateway_token(gateway_b, pharmacy.connection_code, pharmacy.client_secret)}"
            }
            codes = [
                await prescribe(api, w, items=[w.products["normal"].line(quantity=10)])
                for _ in range(PRESCRIPTIONS)
            ]
            product = w.products["normal"].registration_no
            sales = [Sale(code, f"topology-{code}-{n}") for code in codes for n in range(DISPENSES_EACH)]
            gateways = {"a": gateway_a, "b": gateway_b}
            victim = topology.gateways[1]
            answered_by_b = 0
            killed = asyncio.Event()
            enough_on_b = asyncio.Event()

            async def sell(sale: Sale, first: str) -> None:
                nonlocal answered_by_b
                order = [first, "a", "a", "a"]
                for attempt, name in enumerate(order):
                    if name == "b" and killed.is_set():
                        continue
                    client = gateways[name]
                    try:
                        looked = await client.get(f"/gateway/v1/prescriptions/{sale.code}", headers=headers)
                        assert looked.status_code == 200, looked.text
                        sold = await client.post(
                            f"/gateway/v1/prescriptions/{sale.code}/dispenses",
                            json=dispense_body(line(1, product, 1)),
                            headers={**headers, "Idempotency-Key": sale.key},
                        )
                    except httpx.TransportError:
                        # No answer: the client does not know whether it happened, so it asks again
                        # with the same key, at the other gateway.
                        await asyncio.sleep(0.05 * (attempt + 1))
                        continue
                    if sold.status_code == 409 and "still being processed" in sold.text:
                        await asyncio.sleep(0.1)
                        continue
                    assert sold.status_code == 201, sold.text
                    if sale.dispense_id is not None:
                        assert sold.json()["dispense_id"] == sale.dispense_id, (
                            "a retry replays the first answer"
                        )
                    sale.dispense_id = sold.json()["dispense_id"]
                    sale.answered_by.append(name)
                    if name == "b":
                        answered_by_b += 1
                        if answered_by_b >= len(sales) // 6:
                            enough_on_b.set()
                    return
                raise AssertionError(f"{sale.key} never answered")

            async def killer() -> None:
                await enough_on_b.wait()
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait()
                killed.set()

            queue: asyncio.Queue[tuple[Sale, str]] = asyncio.Queue()
            for index, sale in enumerate(sales):
                queue.put_nowait((sale, "ab"[index % 2]))

            async def worker() -> None:
                while not queue.empty():
                    sale, first = queue.get_nowait()
                    await sell(sale, first)

            await asyncio.gather(killer(), *(worker() for _ in range(8)))

        assert killed.is_set() and victim.process.returncode == -signal.SIGKILL
        assert answered_by_b >= len(sales) // 6
        assert all(s.dispense_id for s in sales)
        assert {name for s in sales for name in s.answered_by} == {"a", "b"}

        rows = await topology.replicated.sql(
            topology.replicated.primary,
            "SELECT prescription_code, dispense_id FROM dispense WHERE prescription_code = ANY($1::text[])",
            codes,
        )
        stored = [row["dispense_id"] for row in rows]
        assert sorted(stored) == sorted(str(s.dispense_id) for s in sales), (
            "each answered dispense exactly once"
        )
        remaining = await topology.replicated.sql(
            topology.replicated.primary,
            "SELECT p.code, i.dispensed, i.remaining FROM prescription_item i "
            "JOIN prescription p ON p.id = i.prescription_id WHERE p.code = ANY($1::text[])",
            codes,
        )
        assert {(r["dispensed"], r["remaining"]) for r in remaining} == {
            (DISPENSES_EACH, 10 - DISPENSES_EACH)
        }

    async def test_a_price_shows_on_the_portal_once_the_replica_has_it(self, topology: Topology) -> None:
        replicated = topology.replicated
        standby_state = await replicated.sql(replicated.standby, "SELECT pg_is_in_recovery() AS standby")
        assert standby_state[0]["standby"] is True
        async with (
            httpx.AsyncClient(base_url=topology.core.url, timeout=10) as core,
            httpx.AsyncClient(base_url=topology.gateways[0].url, timeout=10) as gateway,
            httpx.AsyncClient(base_url=topology.portal.url, timeout=10) as portal,
        ):
            api = Api(core, ADMIN_ID, ADMIN_SECRET)
            word = token()
            product = await api.product(name=f"Viên sủi {word}")
            pharmacy = await api.pharmacy()
            headers = {
                "Authorization": f"Bearer {await _gateway_token(gateway, pharmacy.connection_code, pharmacy.client_secret)}"
            }
            # Hold the replica back, publish on the primary: the portal does not have it yet.
            await replicated.sql(replicated.standby, "SELECT pg_wal_replay_pause()")
            try:
                published = await gateway.put(
                    "/gateway/v1/prices",
                    json={
                        "items": [
                            {
                                "registration_no": product.registration_no,
                                "price": 27_500,
                                "unit": product.unit,
                            }
                        ]
                    },
                    headers=headers,
                )
                assert published.status_code == 200, published.text
                await asyncio.sleep(0.5)
                held = await portal.get("/portal/api/v1/prices", params={"q": word})
                assert held.status_code == 200 and held.json()["total"] == 0
            finally:
                await replicated.sql(replicated.standby, "SELECT pg_wal_replay_resume()")
            deadline = time.monotonic() + 15
            while True:
                shown = (await portal.get("/portal/api/v1/prices", params={"q": word})).json()
                if shown["total"] == 1:
                    break
                assert time.monotonic() < deadline, "the replica never caught up"
                await asyncio.sleep(0.1)
            assert shown["items"][0]["price"] == 27_500
            # The portal's patient view writes the access log, so it uses the primary.
            assert (await portal.get("/readyz")).status_code == 200
            assert secrets.compare_digest(
                shown["items"][0]["drug"]["registration_no"], product.registration_no
            )
