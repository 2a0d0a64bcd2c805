"""The bench's seed on a real PostgreSQL: a plan seeds the same world every time, and what it
seeds is what the system itself would have stored (signatures verify, chains hold)."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from rich.console import Console

from bench import project
from bench.seed import Registry, SeedPlan, seed
from bench.seed.prescriptions import HOT_QUANTITY
from tests.clients import ERX
from tests.pg import Cluster

# Small enough for seconds, big enough for every stage: more outlets than the load's 64.
PLAN = SeedPlan(prescriptions=60, price_rows=700, pharmacies=70, facilities=4, prescribers=5)
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
_numbers = itertools.count()

# What a plan decides (not the keys and secrets, which are new every seeding, nor what is sealed
# under them): one fingerprint per table.
FINGERPRINTS = {
    "drug": "SELECT id, registration_no, name, declared_price FROM drug ORDER BY id",
    "facility": "SELECT facility_code, name, province_code FROM facility ORDER BY 1",
    "prescriber": "SELECT prescriber_id, full_name, controlled_allowed FROM prescriber ORDER BY 1",
    "prescriber_facility": "SELECT * FROM prescriber_facility ORDER BY 1, 2",
    "pharmacy": "SELECT connection_code, kind, address, latitude, controlled_licence FROM pharmacy ORDER BY 1",
    "price_listing": "SELECT pharmacy_id, drug_id, price, updated_at FROM price_listing ORDER BY 1, 2",
    "price_history": "SELECT pharmacy_id, drug_id, price, recorded_at FROM price_history ORDER BY 1, 2, 4",
    "prescription": (
        "SELECT code, kind, prescriber_id, issued_at, patient_full_name, patient_date_of_birth, diagnoses, "
        "lines_digest FROM prescription ORDER BY id"
    ),
    "prescription_item": "SELECT * FROM prescription_item ORDER BY id",
    "access_log": "SELECT prescription_code, seq, action, entry_hash FROM access_log ORDER BY 1, 2",
}


async def _seeded(cluster: Cluster, tmp_path: Path) -> tuple[str, Registry, Path]:
    name = f"erx_seed_{next(_numbers)}"
    await cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    url = f"postgresql://{cluster.user}@{cluster.host}:{cluster.port}/{name}"
    await asyncio.to_thread(project.migrate, url)
    home = tmp_path / name
    home.mkdir()
    conn = await asyncpg.connect(url)
    try:
        registry = await seed(conn, PLAN, home / "registry.json", Console(quiet=True), NOW, url)
    finally:
        await conn.close()
    return url, registry, home


async def _fingerprints(url: str) -> dict[str, list[tuple[object, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {table: [tuple(r) for r in await conn.fetch(query)] for table, query in FINGERPRINTS.items()}
    finally:
        await conn.close()


@pytest.fixture
async def seeded(pg_cluster: Cluster, tmp_path: Path) -> tuple[str, Registry, Path]:
    return await _seeded(pg_cluster, tmp_path)


class TestSeed:
    async def test_a_plan_seeds_the_same_world_every_time(
        self, pg_cluster: Cluster, seeded: tuple[str, Registry, Path], tmp_path: Path
    ) -> None:
        first_url, first, _ = seeded
        again_url, again, _ = await _seeded(pg_cluster, tmp_path)
        first_rows, again_rows = await _fingerprints(first_url), await _fingerprints(again_url)
        assert first_rows == again_rows
        assert len(first_rows["prescription"]) == PLAN.prescriptions
        assert len(first_rows["facility"]) == PLAN.facilities
        assert (first.hot_code, first.hot_registration_no) == (again.hot_code, again.hot_registration_no)
        assert first.pharmacies == again.pharmacies
        # Only the secrets are new each time.
        assert first.secret != again.secret

    async def test_what_it_seeds_is_what_the_system_reads(self, seeded: tuple[str, Registry, Path]) -> None:
        url, registry, home = seeded
        conn = await asyncpg.connect(url)
        try:
            hot = await conn.fetch(
                "SELECT i.remaining, i.registration_no FROM prescription_item i "
                "JOIN prescription p ON p.id = i.prescription_id WHERE p.code = $1",
                registry.hot_code,
            )
            licensed = await conn.fetchval(
                "SELECT count(*) FROM pharmacy WHERE controlled_licence AND connection_code = ANY($1)",
                registry.pharmacies,
            )
            marker = await conn.fetchrow("SELECT version, valid_until FROM bench_seed")
        finally:
            await conn.close()
        assert [r["remaining"] for r in hot] == [HOT_QUANTITY]
        assert len(registry.pharmacies) == 64 and licensed == 64
        assert marker is not None and marker["valid_until"] > NOW
        # The system's own audit: every chain holds and every signature verifies with the
        # prescriber's key, through the identity keys the bench servers are given.
        env = {
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": url,
            "ERX_ENVIRONMENT": "test",
            "ERX_DATA_DIR": str(home / "data"),
            "ERX_IDENTITY_KEY": project.identity_key(home / "data"),
        }
        verified = await asyncio.to_thread(
            subprocess.run,
            [ERX, "audit", "verify", "--signatures", "--no-progress"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert f"{PLAN.prescriptions:,} prescriptions verify" in verified.stdout
