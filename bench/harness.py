"""Benchmark harness: a throwaway PostgreSQL, the real server in a subprocess, a load generator.

A scenario is a module in bench/ exposing `SCENARIOS: dict[str, Scenario]` where a Scenario is
`async def (server: BenchServer, options: BenchOptions) -> list[Row]`. Use `server.measure()` to
time a coroutine factory at a given concurrency; it returns a Row with throughput and percentiles.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eprescribe import service as registry
from erx.migrate import upgrade_async
from kit.runtime import Runtime
from kit.settings import Settings
from tests.factories import Api
from tests.pg import Cluster, create_database, start_cluster


@dataclass
class BenchOptions:
    requests: int = 2000
    concurrency: int = 32
    price_rows: int = 1_000_000


@dataclass
class Row:
    scenario: str
    requests: int
    concurrency: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class BenchServer:
    """The running system under test and a client for it."""

    settings: Settings
    base_url: str
    client: httpx.AsyncClient
    api: Api
    process: subprocess.Popen[bytes]
    cluster: Cluster
    extras: dict[str, Any] = field(default_factory=dict)

    async def measure(
        self,
        name: str,
        make_call: Callable[[int], Awaitable[bool]],
        *,
        requests: int,
        concurrency: int,
        note: str = "",
    ) -> Row:
        """Run `make_call(i)` for i in range(requests) with `concurrency` workers; True = success."""
        latencies: list[float] = []
        errors = 0
        counter = iter(range(requests))

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                started = time.perf_counter()
                ok = await make_call(i)
                latencies.append((time.perf_counter() - started) * 1000)
                if not ok:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        return Row(
            name,
            requests,
            concurrency,
            elapsed,
            statistics.median(latencies) if latencies else 0,
            percentile(latencies, 0.95),
            percentile(latencies, 0.99),
            errors,
            note,
        )


async def start_server(cluster: Cluster, *, workers: int = 1) -> BenchServer:
    data_dir = Path(tempfile.mkdtemp(prefix="erx-bench-"))
    url = await create_database(cluster, f"erx_bench_{secrets.token_hex(3)}")
    settings = Settings.model_validate({"DATABASE_URL": url, "data_dir": data_dir, "database_pool_size": 20})
    await upgrade_async(settings)
    admin_id, admin_secret = "bench-admin", secrets.token_urlsafe(24)
    runtime = Runtime.build(settings)  # also generates the signing key the server will read
    async with runtime.database.sessionmaker() as session, session.begin():
        await registry.create_admin_client(
            session, runtime.hasher, name="bench", client_id=admin_id, secret=admin_secret
        )
    await runtime.database.dispose()

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "ERX_DATA_DIR": str(data_dir), "ERX_DATABASE_POOL_SIZE": "20"}
    process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own server on loopback, started once
        [
            sys.executable,
            "-m",
            "uvicorn",
            "erx.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.AsyncClient(
        base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)
    )
    for _ in range(200):
        try:
            if (await client.get("/readyz")).status_code == 200:
                break
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    else:
        process.terminate()
        raise RuntimeError("the server did not start")
    return BenchServer(settings, base_url, client, Api(client, admin_id, admin_secret), process, cluster)


async def stop_server(server: BenchServer) -> None:
    await server.client.aclose()
    server.process.terminate()
    server.process.wait(timeout=30)


def start_postgres() -> Cluster:
    return start_cluster()
