"""Gateway scenarios: prescription lookups and dispenses per second, with latency percentiles."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from bench.harness import BenchOptions, BenchServer, Row
from tests.factories import Api, Pharmacy, World, payload_for

PHARMACIES = 8
PRESCRIPTIONS = 200
PHARMACIST = {"full_name": "DS. Bench", "license_no": "000000/BENCH"}


async def _prescriptions(api: Api, w: World, count: int, quantity: int) -> list[dict[str, Any]]:
    """Submit `count` distinct prescriptions of one line of `quantity` units, a few at a time."""
    product = w.products["normal"]
    signed = [
        w.prescriber.sign(payload_for(w, items=[product.line(quantity=quantity)], notes=f"bench {i}"))
        for i in range(count)
    ]
    gate = asyncio.Semaphore(8)

    async def submit(jws_text: str) -> dict[str, Any]:
        async with gate:
            r = await api.submit(w.facility, jws_text)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    return list(await asyncio.gather(*(submit(s) for s in signed)))


async def _qr_texts(api: Api, w: World, codes: list[str]) -> list[str]:
    texts = []
    for code in codes:
        r = await api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
        texts.append(r.json()["qr_text"])
    return texts


async def _pharmacies(api: Api) -> list[Pharmacy]:
    outlets = [await api.pharmacy() for _ in range(PHARMACIES)]
    assert all(p.token for p in outlets), "pharmacies must get gateway tokens"
    return outlets


async def lookup(server: BenchServer, options: BenchOptions) -> list[Row]:
    """Pharmacies look prescriptions up by typed code, then by the full signed QR text."""
    api = server.api
    w = await api.world()
    codes = [p["code"] for p in await _prescriptions(api, w, min(PRESCRIPTIONS, options.requests), 10)]
    qr_texts = await _qr_texts(api, w, codes)
    outlets = await _pharmacies(api)
    client = server.client

    def make_call(texts: list[str]) -> Any:
        async def call(i: int) -> bool:
            outlet = outlets[i % len(outlets)]
            r = await client.get(f"/gateway/v1/prescriptions/{texts[i % len(texts)]}", headers=outlet.headers)
            return r.status_code == 200

        return call

    # Warm up connections and caches.
    await asyncio.gather(*(make_call(codes)(i) for i in range(len(outlets) * 4)))
    rows = [
        await server.measure(
            "lookup",
            make_call(codes),
            requests=options.requests,
            concurrency=options.concurrency,
            note="GET /gateway/v1/prescriptions/{code}, typed code",
        ),
        await server.measure(
            "lookup-qr",
            make_call(qr_texts),
            requests=options.requests,
            concurrency=options.concurrency,
            note="same, full QR text (national signature verified)",
        ),
    ]
    return rows


async def dispense(server: BenchServer, options: BenchOptions) -> list[Row]:
    """Single-unit dispenses spread over many prescriptions, then all on one (one hot row)."""
    api = server.api
    w = await api.world()
    spread_count = min(PRESCRIPTIONS, options.requests)
    per_prescription = -(-options.requests // spread_count)
    spread = [p["code"] for p in await _prescriptions(api, w, spread_count, per_prescription + 1)]
    hot = (await _prescriptions(api, w, 1, min(100_000, options.requests + 10)))[0]["code"]
    outlets = await _pharmacies(api)
    client = server.client
    registration_no = w.products["normal"].registration_no
    body = {
        "pharmacist": PHARMACIST,
        "items": [{"line_no": 1, "registration_no": registration_no, "quantity": 1}],
    }

    def make_call(codes: list[str]) -> Any:
        async def call(i: int) -> bool:
            outlet = outlets[i % len(outlets)]
            r = await client.post(
                f"/gateway/v1/prescriptions/{codes[i % len(codes)]}/dispenses",
                json=body,
                headers={**outlet.headers, "Idempotency-Key": secrets.token_hex(12)},
            )
            return r.status_code == 201

        return call

    # Warm-up on the spread prescriptions (each has one spare unit for it).
    await asyncio.gather(*(make_call(spread)(i) for i in range(min(len(spread), len(outlets) * 4))))
    return [
        await server.measure(
            "dispense",
            make_call(spread),
            requests=options.requests,
            concurrency=options.concurrency,
            note=f"POST .../dispenses, 1 unit, over {len(spread)} prescriptions",
        ),
        await server.measure(
            "dispense-hot",
            make_call([hot]),
            requests=options.requests,
            concurrency=options.concurrency,
            note="same, every request on one prescription line",
        ),
    ]


SCENARIOS = {"lookup": lookup, "dispense": dispense}
