"""The seeded database: reused when it is complete and of the same plan, else seeded anew, stage
by stage, each with a progress bar."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from rich.console import Console

from bench import jose, project
from bench.seed.clients import LOAD_PHARMACIES, seed_catalogue, seed_clients
from bench.seed.copier import Copier, progress_bars
from bench.seed.plan import DATABASE, REUSABLE_VERSIONS, SEED_VERSION, Registry, SeedPlan
from bench.seed.prescriptions import Signers, seed_prescriptions
from bench.seed.prices import seed_prices
from bench.seed.world import Drug, thumbprint
from kit.pii import PiiKeys


async def seed(
    conn: asyncpg.Connection,
    plan: SeedPlan,
    registry_path: Path,
    console: Console,
    now: datetime,
    database_url: str,
) -> Registry:
    """Fill an empty, migrated database; returns what the load needs and saves it."""
    rng = random.Random(plan.seed)
    copier = Copier(conn)
    secret = secrets.token_urlsafe(24)
    secret_hash = await asyncio.to_thread(project.hash_secret, secret)
    national = jose.private_jwk(jose.generate())
    # The identity numbers and the JWS are stored encrypted, under the key the bench server
    # reads from its data directory (kit.pii), as the app itself writes them.
    pii_keys = PiiKeys.load(project.settings_for(database_url, national, registry_path.parent / "data"))
    national["kid"] = thumbprint(national)[:16]
    valid_until = (now + timedelta(days=365)).replace(microsecond=0)

    with progress_bars(console) as progress:
        drugs = await seed_catalogue(conn, copier, progress, now)
        clients = await seed_clients(conn, copier, progress, rng, plan, secret_hash=secret_hash, now=now)
        await seed_prices(copier, progress, rng, plan, clients.outlets, drugs, now)
        by_kind: dict[str, list[Drug]] = {
            kind: [d for d in drugs if d.category in cats] for kind, cats in project.KIND_CATEGORIES.items()
        }
        hot = await seed_prescriptions(
            copier,
            progress,
            rng,
            plan,
            prescribers=clients.prescribers,
            facility_names=clients.facility_names,
            by_kind=by_kind,
            signers=Signers(clients.prescribers, national, pii_keys),
            now=now,
            valid_until=valid_until,
        )
        for table in ("prescription", "prescription_item"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        # Tables the system derives from the rows copied above: search words, listing counts.
        task = progress.add_task("derived tables", total=1)
        await asyncio.to_thread(project.refresh_derived, database_url)
        progress.advance(task)
        task = progress.add_task("vacuum analyze", total=1)
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
        progress.advance(task)

    registry = Registry(
        secret=secret,
        signing_key=national,
        facilities=clients.facility_codes,
        prescribers=clients.prescribers,
        pharmacies=clients.pharmacy_codes[:LOAD_PHARMACIES],
        hot_code=hot[0],
        hot_registration_no=hot[1],
        normal_lines=[
            {
                "active_ingredient": d.active_ingredient,
                "strength": d.strength,
                "dosage_form": d.dosage_form,
                "unit": d.unit,
                "registration_no": d.registration_no,
            }
            for d in by_kind["c"]
        ],
    )
    registry.save(registry_path)
    await conn.execute(
        "CREATE TABLE bench_seed (version int NOT NULL, plan jsonb NOT NULL, seeded_at timestamptz NOT NULL, "
        "valid_until timestamptz NOT NULL)"
    )
    await conn.execute(
        "INSERT INTO bench_seed VALUES ($1, $2, $3, $4)",
        SEED_VERSION,
        json.dumps(asdict(plan)),
        now,
        valid_until,
    )
    return registry


async def connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url)


async def ensure(
    admin_url: str,
    url_of: Callable[[str], str],
    plan: SeedPlan,
    registry_path: Path,
    console: Console,
    *,
    reseed: bool = False,
) -> Registry:
    """Reuse the seeded database when it is complete and matches the plan; else seed it anew."""
    now = datetime.now(UTC)
    admin = await asyncpg.connect(admin_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if exists and not reseed and await asyncio.to_thread(registry_path.exists):
            conn = await asyncpg.connect(url_of(DATABASE))
            try:
                marker = None
                if await conn.fetchval("SELECT to_regclass('bench_seed') IS NOT NULL"):
                    marker = await conn.fetchrow("SELECT version, plan, valid_until FROM bench_seed LIMIT 1")
            finally:
                await conn.close()
            if (
                marker is not None
                and marker["version"] in REUSABLE_VERSIONS
                and plan.matches(json.loads(marker["plan"]))
                and marker["valid_until"] > now + timedelta(days=2)
            ):
                console.print(
                    f"Reusing the seeded database [bold]{DATABASE}[/] ({plan.prescriptions:,} prescriptions, {plan.price_rows:,} price rows)"
                )
                # Migrations added since the seed run in place (a no-op at the head), as in production.
                await asyncio.to_thread(project.migrate, url_of(DATABASE))
                return Registry.load(registry_path)
            console.print("The seeded database is incomplete, stale or of another plan: seeding it anew")
        if exists:
            await admin.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    console.print(f"Seeding [bold]{DATABASE}[/]: migrations …")
    await asyncio.to_thread(project.migrate, url_of(DATABASE))
    conn = await asyncpg.connect(url_of(DATABASE))
    try:
        return await seed(conn, plan, registry_path, console, now, url_of(DATABASE))
    finally:
        await conn.close()
