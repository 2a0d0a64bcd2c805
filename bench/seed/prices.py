"""Price listings and their history: each outlet lists a share of the catalogue near its declared
price, with a bias of its own, and some listings changed price once or twice."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from rich.progress import Progress

from bench import project
from bench.seed.copier import Copier
from bench.seed.plan import BATCH, SeedPlan
from bench.seed.world import CATEGORY_WEIGHT, Drug, round_price


def _outlet_rows(
    rng: random.Random, outlet: asyncpg.Record, drugs: Sequence[Drug], wanted_of: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One outlet's listings and their price history."""
    allowed = [
        d for d in drugs if outlet["controlled_licence"] or d.category not in project.CONTROLLED_CATEGORIES
    ]
    wanted = min(len(allowed), wanted_of)
    keyed = sorted(
        allowed,
        key=lambda d: rng.random() ** (1.0 / CATEGORY_WEIGHT.get(d.category, 0.3)),
        reverse=True,
    )
    bias = rng.gauss(0, 0.06)
    listings: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for drug in keyed[:wanted]:
        price = round_price((drug.declared_price or 5000) * (1.08 + bias + rng.gauss(0, 0.12)))
        at = now - timedelta(days=rng.uniform(0, 180), minutes=rng.randint(0, 600))
        history.append(
            {
                "pharmacy_id": outlet["id"],
                "drug_id": drug.id,
                "price": price,
                "unit": drug.unit,
                "recorded_at": at,
            }
        )
        for _ in range(rng.choices([0, 1, 2], [0.55, 0.3, 0.15])[0]):
            at = at + (now - at) * rng.uniform(0.2, 0.9)
            price = round_price(price * (1 + rng.gauss(0.02, 0.05)))
            history.append(
                {
                    "pharmacy_id": outlet["id"],
                    "drug_id": drug.id,
                    "price": price,
                    "unit": drug.unit,
                    "recorded_at": at,
                }
            )
        listings.append(
            {
                "pharmacy_id": outlet["id"],
                "drug_id": drug.id,
                "price": price,
                "unit": drug.unit,
                "province_code": outlet["province_code"],
                "outlet_kind": outlet["kind"],
                "latitude": outlet["latitude"],
                "longitude": outlet["longitude"],
                "updated_at": at,
            }
        )
    return listings, history


async def seed_prices(
    copier: Copier,
    progress: Progress,
    rng: random.Random,
    plan: SeedPlan,
    outlets: Sequence[asyncpg.Record],
    drugs: Sequence[Drug],
    now: datetime,
) -> None:
    task = progress.add_task("price listings", total=plan.price_rows)
    per_outlet, extra = divmod(plan.price_rows, len(outlets))
    listings: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    done = 0
    for position, outlet in enumerate(outlets):
        rows, changes = _outlet_rows(rng, outlet, drugs, per_outlet + (1 if position < extra else 0), now)
        listings += rows
        history += changes
        if len(listings) >= 5 * BATCH or position == len(outlets) - 1:
            await copier.copy("price_listing", listings)
            await copier.copy("price_history", history)
            done += len(listings)
            progress.update(task, completed=done)
            listings, history = [], []
    # Outlets with a short licence list fewer products than planned: the bar ends at what was seeded.
    progress.update(task, total=done)
