"""Crashes: server processes killed under load, and PostgreSQL restarted under load.

Two `uvicorn erx.app:create_app` processes on loopback ports share one PostgreSQL. Clients
submit prescriptions and dispense from them concurrently, each request with an
`Idempotency-Key`; a killer SIGKILLs one server, then the other, several times, restarting each.
A client that loses its answer retries with the same key, at either server. Afterwards every
request answered 201 is in the database exactly once, no quantity is negative, and every
retry converged on the first answer.

Then PostgreSQL itself is shut down in the middle of traffic: the service answers 503
problem+json with `Retry-After` meanwhile, and once the server is back it answers 2xx again by
itself (no restart of the service).
"""

from __future__ import annotations

import asyncio
import random
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
from tests.factories import Api, World, dispense_body, line, payload_for
from tests.pg import Cluster, free_port, start_cluster
from tests.processes import deployment_environment, until_ready

pytestmark = [pytest.mark.postgres_only, pytest.mark.timeout(300)]

DATABASE = "erx"
KILLS = 4
SUBMITS = 40
DISPENSES_EACH = 3
QUANTITY = 10


@dataclass
class Server:
    name: str
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "erx.app:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    async def ready(self, deadline: float) -> None:
        assert self.process is not None
        await until_ready(self.url, self.process, deadline, name=self.name, log=self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Deployment:
    cluster: Cluster
    servers: list[Server]

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            host=self.cluster.host, port=self.cluster.port, user=self.cluster.user, database=DATABASE
        )
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    own = start_cluster(own=True)
    try:
        asyncio.run(own.execute(f'CREATE DATABASE "{DATABASE}"'))
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
async def deployment(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    root = tmp_path_factory.mktemp("crashes")
    url = cluster.url(DATABASE)
    base = await deployment_environment(root, url, ERX_DATABASE_POOL_TIMEOUT_SECONDS="2")
    servers = []
    for name in ("one", "two"):
        (root / name).mkdir()
        servers.append(Server(name, {**base, "ERX_DATA_DIR": str(root / name)}, root / f"{name}.log"))
    for server in servers:
        server.start()
    try:
        deadline = time.monotonic() + 60
        await asyncio.gather(*(s.ready(deadline) for s in servers))
        yield Deployment(cluster, servers)
    finally:
        for server in servers:
            server.stop()


@dataclass
class Outcome:
    key: str
    answers: list[dict[str, Any]] = field(default_factory=list)
    lost: int = 0


class Clients:
    """One httpx client per server, rebuilt when a server restarts (its port stays the same)."""

    def __init__(self, servers: list[Server]) -> None:
        self.clients = [httpx.AsyncClient(base_url=s.url, timeout=10) for s in servers]

    def any(self) -> httpx.AsyncClient:
        return random.choice(self.clients)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _until_answered(
    clients: Clients, outcome: Outcome, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """Send until some server answers other than 503/"still being processed"; same key every time."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"{outcome.key} never answered"
        try:
            r = await clients.any().request(method, path, **kwargs)
        except httpx.TransportError:
            # Killed mid-request: the client cannot know whether it happened; it asks again.
            outcome.lost += 1
            await asyncio.sleep(0.05)
            continue
        if r.status_code == 503 or (r.status_code == 409 and "still being processed" in r.text):
            await asyncio.sleep(0.1)
            continue
        return r


class TestServersKilled:
    async def test_sigkill_under_submit_and_dispense_load_loses_and_doubles_nothing(
        self, deployment: Deployment
    ) -> None:
        servers = deployment.servers
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=10) as setup:
            api = Api(setup, ADMIN_ID, ADMIN_SECRET)
            w: World = await api.world()
            pharmacy = await api.pharmacy()
            token = (
                await api.token("/gateway/v1/auth/token", pharmacy.connection_code, pharmacy.client_secret)
            ).json()
        gateway = {"Authorization": f"Bearer {token['access_token']}"}
        product = w.products["normal"]
        clients = Clients(servers)
        submits: list[Outcome] = []
        sales: list[Outcome] = []
        done = asyncio.Event()
        kills = 0

        async def submit_and_sell(outcome: Outcome) -> None:
            # Notes make each payload unique: the same signed payload twice is a replay (409).
            payload = payload_for(w, items=[product.line(quantity=QUANTITY)], notes=outcome.key)
            jws = w.prescriber.sign(payload)
            r = await _until_answered(
                clients,
                outcome,
                "POST",
                "/api/v1/prescriptions",
                json={"jws": jws},
                headers={**w.facility.headers, "Idempotency-Key": outcome.key},
            )
            assert r.status_code == 201, r.text
            outcome.answers.append(r.json())
            # A retry with the same key, after the fact, converges on the same prescription.
            again = await _until_answered(
                clients,
                outcome,
                "POST",
                "/api/v1/prescriptions",
                json={"jws": jws},
                headers={**w.facility.headers, "Idempotency-Key": outcome.key},
            )
            assert again.status_code == 201 and again.json()["code"] == r.json()["code"]
            code = r.json()["code"]
            for n in range(DISPENSES_EACH):
                sale = Outcome(f"sale-{code}-{n}")
                sales.append(sale)
                sold = await _until_answered(
                    clients,
                    sale,
                    "POST",
                    f"/gateway/v1/prescriptions/{code}/dispenses",
                    json=dispense_body(line(1, product.registration_no, 1)),
                    headers={**gateway, "Idempotency-Key": sale.key},
                )
                assert sold.status_code == 201, sold.text
                sale.answers.append(sold.json())

        async def killer() -> None:
            nonlocal kills
            while kills < KILLS and not done.is_set():
                await asyncio.sleep(random.uniform(0.5, 1.2))
                victim = servers[kills % len(servers)]
                victim.kill()
                kills += 1
                await asyncio.sleep(0.3)
                victim.start()
                await victim.ready(time.monotonic() + 60)

        killed_all = asyncio.Event()

        def next_submit() -> Outcome | None:
            # At least SUBMITS, and more for as long as the killer is still at work.
            if len(submits) >= SUBMITS and killed_all.is_set():
                return None
            outcome = Outcome(f"submit-{len(submits)}")
            submits.append(outcome)
            return outcome

        async def worker() -> None:
            while (outcome := next_submit()) is not None:
                await submit_and_sell(outcome)

        async def kill_then_say() -> None:
            await killer()
            killed_all.set()

        try:
            killing = asyncio.create_task(kill_then_say())
            await asyncio.gather(*(worker() for _ in range(8)))
            done.set()
            await killing
        finally:
            await clients.close()

        assert kills == KILLS, "every planned SIGKILL happened during the load"
        codes = [o.answers[0]["code"] for o in submits]
        assert len(set(codes)) == len(submits) >= SUBMITS
        stored = await deployment.sql(
            "SELECT code FROM prescription WHERE facility_code = $1", w.facility.facility_code
        )
        assert sorted(r["code"] for r in stored) == sorted(codes), "every 201 submit stored exactly once"
        dispensed = await deployment.sql(
            "SELECT dispense_id FROM dispense WHERE prescription_code = ANY($1::text[])", codes
        )
        assert sorted(r["dispense_id"] for r in dispensed) == sorted(
            s.answers[0]["dispense_id"] for s in sales
        )
        lines = await deployment.sql(
            "SELECT i.dispensed, i.remaining FROM prescription_item i "
            "JOIN prescription p ON p.id = i.prescription_id WHERE p.code = ANY($1::text[])",
            codes,
        )
        assert {(r["dispensed"], r["remaining"]) for r in lines} == {
            (DISPENSES_EACH, QUANTITY - DISPENSES_EACH)
        }
        lost = sum(o.lost for o in [*submits, *sales])
        print(
            f"\ncrashes: {kills} SIGKILLs, {len(submits)} submits, {len(sales)} dispenses, {lost} answers lost and retried"
        )


class TestDatabaseRestarted:
    async def test_503_with_retry_after_while_postgresql_is_down_then_recovers_alone(
        self, deployment: Deployment
    ) -> None:
        server = deployment.servers[0]
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            api = Api(client, ADMIN_ID, ADMIN_SECRET)
            w: World = await api.world()
            facility = w.facility.headers
            statuses: list[int] = []
            unavailable: list[httpx.Response] = []
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    r = await client.get("/api/v1/prescriptions/01001AAAAAAA-c", headers=facility)
                    statuses.append(r.status_code)
                    if r.status_code >= 500:
                        unavailable.append(r)
                    await asyncio.sleep(0.02)

            loaders = [asyncio.create_task(load()) for _ in range(4)]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(deployment.cluster.halt)
            deadline = time.monotonic() + 30
            while len(unavailable) < 5:
                assert time.monotonic() < deadline, "no answer while the database was down"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(deployment.cluster.resume)
            recovered_from = len(statuses)
            deadline = time.monotonic() + 30
            while not any(s == 404 for s in statuses[recovered_from:]):
                assert time.monotonic() < deadline, (
                    "the service did not recover by itself",
                    sorted(set(statuses[recovered_from:])),
                    [r.text[:200] for r in unavailable[-2:]],
                )
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*loaders)
            health = await client.get("/healthz")
            ready = await client.get("/readyz")

        assert {r.status_code for r in unavailable} == {503}, [
            r.text for r in unavailable if r.status_code != 503
        ]
        for r in unavailable:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["status"] == 503
        assert health.status_code == 200 and ready.status_code == 200
        # Before the outage and after it, the unknown code is a plain 404.
        assert statuses[0] == 404 and statuses[-1] == 404
