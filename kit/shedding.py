"""Shed load instead of queueing it: a global limit of requests in progress and a quota per client.

Past `max_concurrent_requests` a request is answered 503 with `Retry-After` at once; past its
quota a client gets 429 with `Retry-After`. Both answers cost no database connection, so under
overload the requests admitted still finish in time, and the health endpoints always answer.
The quota is a token bucket per access token (a presented token is its client: forging someone
else's would need the national key), else per client address. The buckets live in this
process's memory, so the quota is per process: across P processes a client gets between one
and P quotas, depending on how its connections land (README, "The client quota is per
process"); a shared counter would cost a round trip on every request.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from kit import metrics, observability
from kit.errors import PROBLEM_BASE, PROBLEM_JSON
from kit.settings import Settings

# Never shed: a load balancer must learn the truth about this instance even under overload.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
BUCKETS_KEPT = 50_000


@dataclass(slots=True)
class Bucket:
    tokens: float
    at: float


class Quotas:
    """Token buckets per client key: `rate` per second, up to `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, Bucket] = {}

    def take(self, key: str, now: float) -> float:
        """Spend one request; 0 when allowed, else the seconds until one is."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= BUCKETS_KEPT:
                # Full buckets are the ones to forget: they hold no debt.
                for stale in [k for k, b in self._buckets.items() if b.tokens >= self.burst - 1][
                    : BUCKETS_KEPT // 2
                ] or list(self._buckets)[: BUCKETS_KEPT // 2]:
                    del self._buckets[stale]
            bucket = self._buckets[key] = Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def client_key(scope: Scope) -> str:
    """The bearer token's digest when one is presented, else the (trusted-proxy-resolved) address."""
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return "t:" + hashlib.sha256(value[7:].strip()).hexdigest()[:32]
    client = scope.get("client")
    return "a:" + (client[0] if client else "unknown")


def _problem(
    status: int, problem: str, title: str, detail: str, retry_after: int
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps(
        {"type": PROBLEM_BASE + problem, "title": title, "status": status, "detail": detail}
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"cache-control", b"no-store"),
    ]
    return body, headers


class Shedding:
    """Pure ASGI middleware: the global concurrency limit and the per-client quota."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.limit = settings.max_concurrent_requests
        self.quotas = Quotas(settings.client_quota_per_second, settings.client_quota_burst)
        self.in_flight = 0

    async def _refuse(
        self, send: Send, status: int, problem: str, title: str, detail: str, wait: float
    ) -> None:
        metrics.REFUSALS.labels(problem).inc()
        observability.note_problem(problem)
        body, headers = _problem(status, problem, title, detail, max(1, math.ceil(wait)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self.quotas.take(client_key(scope), time.monotonic())
        if wait > 0:
            await self._refuse(
                send,
                429,
                "quota",
                "Too many requests",
                "This client's request quota is spent; retry later",
                wait,
            )
            return
        if self.in_flight >= self.limit:
            await self._refuse(
                send, 503, "overloaded", "Overloaded", "The service is at capacity; retry shortly", 1
            )
            return
        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()
