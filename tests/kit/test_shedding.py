"""Overload: quotas and the concurrency limit shed load with 429/503 and Retry-After; health stays
up; slow uploads pin no database connection."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client import REGISTRY

from erx.app import create_app
from kit.runtime import Runtime
from kit.settings import Settings
from tests.conftest import HarnessFactory
from tests.fuzz.runner import serve

PROBLEM = "application/problem+json"


def _in_flight() -> float:
    return REGISTRY.get_sample_value("erx_requests_in_flight") or 0.0


class SlowUpload:
    """A raw HTTP/1.1 request whose body is sent in two halves, the second only when told."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str], body: bytes) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        head = [
            f"PUT {path} HTTP/1.1",
            f"Host: {host}",
            f"Content-Length: {len(body)}",
            "Content-Type: application/json",
        ]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.rest = body[len(body) // 2 :]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[: len(body) // 2])

    def finish(self) -> int:
        self.sock.sendall(self.rest)
        answer = b""
        while b"\r\n" not in answer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        self.sock.close()
        return int(answer.split(b" ", 2)[1])


async def _wait_in_flight(at_least: float) -> None:
    deadline = time.monotonic() + 30
    while _in_flight() < at_least:
        assert time.monotonic() < deadline, "the slow uploads never reached the server"
        await asyncio.sleep(0.02)


@contextmanager
def _live(settings: Settings) -> Iterator[str]:
    with serve(create_app(runtime=Runtime.build(settings))) as base:
        yield base


def _price_body(registration_no: str, unit: str) -> bytes:
    return json.dumps(
        {"items": [{"registration_no": registration_no, "price": 12_000, "unit": unit}]}
    ).encode()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
class TestSlowClients:
    async def test_slow_uploads_hold_no_connection_nor_the_write_lock(
        self, make_harness: HarnessFactory, engine: str
    ) -> None:
        # One pooled connection (two with overflow) on PostgreSQL; SQLite has one writer.
        harness = await make_harness(engine, database_pool_size=1, database_pool_timeout_seconds=3)
        api = harness.api
        product = await api.product()
        pharmacy = await api.pharmacy()
        admin = await api.admin_headers()
        with _live(harness.settings) as base:
            before = _in_flight()
            uploads = [
                SlowUpload(
                    base,
                    "/gateway/v1/prices",
                    pharmacy.headers,
                    _price_body(product.registration_no, product.unit),
                )
                for _ in range(3)
            ]
            await _wait_in_flight(before + 3)
            # Three requests are in the middle of their bodies: a write still goes through at once.
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                r = await client.post(
                    "/api/v1/facilities",
                    json={"name": "Bệnh viện Chậm", "province_code": "01"},
                    headers=admin,
                )
                assert r.status_code == 201, r.text
            statuses = [await asyncio.to_thread(u.finish) for u in uploads]
        assert statuses == [200, 200, 200]

    async def test_the_concurrency_limit_sheds_with_503_and_health_stays_up(
        self, make_harness: HarnessFactory, engine: str
    ) -> None:
        harness = await make_harness(engine, max_concurrent_requests=2)
        api = harness.api
        product = await api.product()
        pharmacy = await api.pharmacy()
        with _live(harness.settings) as base:
            before = _in_flight()
            uploads = [
                SlowUpload(
                    base,
                    "/gateway/v1/prices",
                    pharmacy.headers,
                    _price_body(product.registration_no, product.unit),
                )
                for _ in range(2)
            ]
            await _wait_in_flight(before + 2)
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                shed = await client.get("/portal/api/v1/prices")
                health = await client.get("/healthz")
                ready = await client.get("/readyz")
                statuses = [await asyncio.to_thread(u.finish) for u in uploads]
                after = await client.get("/portal/api/v1/prices")
        assert shed.status_code == 503 and shed.headers["content-type"].startswith(PROBLEM)
        assert int(shed.headers["retry-after"]) >= 1 and shed.json()["type"].endswith("/overloaded")
        assert health.status_code == 200 and ready.status_code == 200
        assert statuses == [200, 200] and after.status_code == 200


class TestQuotas:
    @pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
    async def test_a_client_past_its_quota_gets_429_others_and_health_do_not(
        self, make_harness: HarnessFactory, engine: str
    ) -> None:
        harness = await make_harness(engine, client_quota_per_second=0.01, client_quota_burst=12)
        api = harness.api
        greedy = await api.pharmacy()
        other = await api.pharmacy()
        answers = [await api.client.get("/gateway/v1/dispenses", headers=greedy.headers) for _ in range(13)]
        assert [r.status_code for r in answers[:12]] == [200] * 12
        refused = answers[12]
        assert refused.status_code == 429 and refused.headers["content-type"].startswith(PROBLEM)
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["type"].endswith("/quota")
        assert (await api.client.get("/gateway/v1/dispenses", headers=other.headers)).status_code == 200
        assert (await api.client.get("/healthz")).status_code == 200

    async def test_each_process_counts_its_own_quota(self, make_harness: HarnessFactory) -> None:
        """Two processes of one deployment (two apps on the same settings and database): each
        grants a client the whole quota, as the settings and the README say."""
        harness = await make_harness("sqlite", client_quota_per_second=0.01, client_quota_burst=5)
        pharmacy = await harness.api.pharmacy()
        second = Runtime.build(harness.settings)
        other_process = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(runtime=second)), base_url="http://erx.test"
        )
        try:
            for process in (harness.client, other_process):
                answers = [
                    (await process.get("/gateway/v1/dispenses", headers=pharmacy.headers)).status_code
                    for _ in range(6)
                ]
                assert answers == [200] * 5 + [429]
        finally:
            await other_process.aclose()
            await second.dispose()
        for name in ("client_quota_per_second", "client_quota_burst"):
            description = Settings.model_fields[name].description
            assert description is not None and "ONE process" in description
