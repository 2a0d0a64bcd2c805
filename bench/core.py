"""Core scenario: signed prescriptions submitted per second."""

from __future__ import annotations

import asyncio

from bench.harness import BenchOptions, BenchServer, Row
from tests.factories import payload_for


async def prescribe(server: BenchServer, options: BenchOptions) -> list[Row]:
    """Facilities submit freshly signed prescriptions (signing happens before the clock starts)."""
    api = server.api
    worlds = [await api.world() for _ in range(4)]
    jobs = []
    for i in range(options.requests):
        w = worlds[i % len(worlds)]
        jobs.append((w.facility, w.prescriber.sign(payload_for(w, notes=f"bench {i}"))))
    # Warm up connections and caches.
    await asyncio.gather(
        *(api.submit(w.facility, w.prescriber.sign(payload_for(w, notes="warm-up"))) for w in worlds)
    )

    async def call(i: int) -> bool:
        facility, jws_text = jobs[i]
        r = await api.submit(facility, jws_text)
        return r.status_code == 201

    row = await server.measure(
        "prescribe",
        call,
        requests=options.requests,
        concurrency=options.concurrency,
        note="POST /api/v1/prescriptions, ES256 JWS",
    )
    return [row]


SCENARIOS = {"prescribe": prescribe}
