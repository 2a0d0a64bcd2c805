"""Price-portal scenarios: search with a million listings on PostgreSQL.

Seeding goes through `price_portal.seed` (asyncpg COPY), the same code as `erx demo seed-prices`.
"""

from __future__ import annotations

import random
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.harness import BenchOptions, BenchServer, Row
from eprescribe import service as registry
from kit.runtime import Runtime
from price_portal.seed import seed_prices

console = Console()
# What citizens type: ingredients and brands, with and without diacritics.
QUERIES = [
    "paracetamol",
    "amoxicillin",
    "thuoc ho",
    "thuốc ho",
    "vitamin c",
    "omeprazol",
    "metformin",
    "panadol",
    "efferalgan",
    "bo phe",
    "siro",
    "ibuprofen",
    "cetirizin",
    "amlodipin",
    "losartan",
    "berberin",
    "omega 3",
    "canxi",
    "men vi sinh",
    "augmentin",
]
TYPOS = ["paracetmol", "amoxcilin", "omeprazl", "metfromin", "cetirizine", "ibuprofne"]
PROVINCES = ["01", "79", "48", "31", "92", "38", "40"]


async def _seed(server: BenchServer, rows: int) -> list[str]:
    """Seed `rows` listings (about 400 products per outlet) and return some registration numbers."""
    runtime = Runtime.build(server.settings)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    tasks: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(f"Seeding {stage}", total=total)
        progress.update(tasks[stage], completed=done, total=total)

    try:
        with progress:
            result = await seed_prices(runtime, outlets=max(50, rows // 400), rows=rows, progress=report)
        console.print(
            f"{result.listings:,} listings, {result.history:,} history rows, {result.outlets:,} outlets"
        )
        async with runtime.database.sessionmaker() as session:
            _, drugs = await registry.search_catalogue(session, q=None, category=None, limit=1000, offset=0)
        return [d.registration_no for d in drugs]
    finally:
        await runtime.database.dispose()


def _search_params(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {"q": rng.choice(QUERIES)}
    roll = rng.random()
    if roll < 0.35:
        params["province"] = rng.choice(PROVINCES)
    elif roll < 0.45:
        params["kind"] = rng.choice(["pharmacy", "drugstore"])
    sort = rng.random()
    if sort < 0.15:
        params["sort"] = "-price"
    elif sort < 0.3:
        params["sort"] = "updated"
    if rng.random() < 0.2:
        params["offset"] = rng.choice([20, 40, 100])
    return params


def _browse_params(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {"sort": rng.choice(["price", "-price", "updated"])}
    if rng.random() < 0.6:
        params["province"] = rng.choice(PROVINCES)
    if rng.random() < 0.3:
        params["category"] = "supplement"
    return params


async def search(server: BenchServer, options: BenchOptions) -> list[Row]:
    """GET /portal/api/v1/prices and the product answer, with `price_rows` listings."""
    numbers = await _seed(server, options.price_rows)
    client = server.client
    rng = random.Random(4)

    async def get(path: str, params: dict[str, Any] | None = None) -> bool:
        r = await client.get(path, params=params)
        return r.status_code == 200

    plans: list[tuple[str, list[tuple[str, dict[str, Any] | None]], str]] = [
        (
            "search",
            [("/portal/api/v1/prices", _search_params(rng)) for _ in range(options.requests)],
            "q by brand/ingredient, ±province/kind, 3 sorts, pages",
        ),
        (
            "search-typo",
            [("/portal/api/v1/prices", {"q": rng.choice(TYPOS)}) for _ in range(options.requests)],
            "q with a typo (pg_trgm)",
        ),
        (
            "search-browse",
            [("/portal/api/v1/prices", _browse_params(rng)) for _ in range(options.requests)],
            "no q: province/category filters, exact total",
        ),
        (
            "product",
            [(f"/portal/api/v1/drugs/{rng.choice(numbers)}", None) for _ in range(options.requests)],
            "stats (min/median/max) + alternatives",
        ),
        (
            "product-outlets",
            [
                (f"/portal/api/v1/drugs/{rng.choice(numbers)}/outlets", {"lat": 21.03, "lon": 105.85})
                for _ in range(options.requests)
            ],
            "nearest outlets + 30-day paid medians",
        ),
    ]
    # The same searches from a few clients at once: latency without queueing behind 32 others.
    plans.insert(1, ("search-c4", plans[0][1], "the same searches, 4 concurrent clients"))
    rows = []
    for name, calls, note in plans:
        # Warm the pools and the buffer cache first, as a running service would be.
        for path, params in calls[:50]:
            await get(path, params)

        async def call(i: int, calls: list[tuple[str, dict[str, Any] | None]] = calls) -> bool:
            path, params = calls[i]
            return await get(path, params)

        rows.append(
            await server.measure(
                name,
                call,
                requests=options.requests,
                concurrency=min(4, options.concurrency) if name == "search-c4" else options.concurrency,
                note=f"{options.price_rows:,} listings; {note}",
            )
        )
    return rows


SCENARIOS = {"search": search}
