"""`erx serve --workers 2`: the metrics of both worker processes add up in every scrape."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import httpx
import pytest

from tests.clients import ERX
from tests.conftest import Harness
from tests.kit.test_observability import metric
from tests.pg import free_port
from tests.processes import until_ready

pytestmark = pytest.mark.postgres_only


async def test_every_scrape_counts_the_requests_of_every_worker(pg_harness: Harness) -> None:
    settings = pg_harness.settings
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ERX_", "PROMETHEUS_")) and k != "DATABASE_URL"
    }
    env |= {
        "ERX_ENVIRONMENT": "test",
        "ERX_DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": str(settings.database_url),
        "ERX_SIGNING_KEY": settings.signing_key.get_secret_value() if settings.signing_key else "",
    }
    port = free_port()
    server = await asyncio.to_thread(
        subprocess.Popen,
        [ERX, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        capacity = 2 * 2 * settings.database_pool_size

        async def both_workers_up(client: httpx.AsyncClient) -> bool:
            # The first worker up answers `/readyz` while the other may still be starting, and
            # then only its own pool shows in the capacity gauge.
            scraped = (await client.get("/metrics")).text
            return metric(scraped, "erx_db_pool_capacity", database="primary") == capacity

        # A bound, not a measurement: two workers start slowly on a busy machine.
        await until_ready(base, server, time.monotonic() + 180, also=both_workers_up)

        async def once() -> int:
            # A connection per request, so the kernel hands them to both workers.
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                return (await client.get("/api/v1/drugs", params={"q": "para"})).status_code

        statuses = await asyncio.gather(*(once() for _ in range(60)))
        assert set(statuses) == {200}
        for _ in range(6):
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                text = (await client.get("/metrics")).text
            counted = metric(
                text, "erx_http_requests_total", method="GET", route="/api/v1/drugs", status="200"
            )
            assert counted == 60
            assert metric(text, "erx_db_pool_capacity", database="primary") == capacity
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)
