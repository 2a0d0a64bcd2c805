"""The tamper-evident access log, `erx audit verify`, and `erx backup` / `erx restore` (issue 11, 4 and 8)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from eprescribe.prescriptions.models import Prescription
from kit import audit
from kit.audit import AccessLogEntry, AccessLogHead
from tests.clients import erx, erx_command, gateway_for
from tests.conftest import Harness, make_settings
from tests.factories import access_entries, prescribe
from tests.pg import Cluster


async def busy_prescription(harness: Harness) -> str:
    """A prescription with a few entries in its chain: created, looked up twice, read."""
    w = await harness.api.world()
    code = await prescribe(harness.api, w)
    gw = await gateway_for(harness)
    for _ in range(2):
        assert (await gw.lookup(code)).status_code == 200
    r = await harness.api.client.get(f"/api/v1/prescriptions/{code}", headers=w.facility.headers)
    assert r.status_code == 200
    return code


async def tamper(harness: Harness, statement: str, **params: object) -> None:
    """Change the log behind the app's back, as someone with the database's own rights would."""
    async with harness.runtime.database.engine.begin() as connection:
        if harness.engine == "postgresql":
            # A superuser can switch the append-only trigger off for a session...
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            # ...and on SQLite anyone with the file can drop it.
            await connection.execute(text("DROP TRIGGER IF EXISTS access_log_no_update"))
            await connection.execute(text("DROP TRIGGER IF EXISTS access_log_no_delete"))
        await connection.execute(text(statement), params)


class TestTheChain:
    async def test_every_entry_is_chained_in_order(self, harness: Harness) -> None:
        code = await busy_prescription(harness)
        entries = await access_entries(harness, code)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert entries[0].prev_hash == ""
        for before, after in itertools.pairwise(entries):
            assert after.prev_hash == before.entry_hash
        done = await erx(harness, "audit", "verify", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "chains hold" in done.stdout

    async def test_the_log_refuses_updates_and_deletes(self, harness: Harness) -> None:
        code = await busy_prescription(harness)
        for statement in (
            "UPDATE access_log SET action = 'read' WHERE prescription_code = :code",
            "DELETE FROM access_log WHERE prescription_code = :code",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with harness.runtime.database.engine.begin() as connection:
                    await connection.execute(text(statement), {"code": code})
        assert len(await access_entries(harness, code)) == 4

    async def test_an_edited_entry_is_caught_and_named(self, harness: Harness) -> None:
        code = await busy_prescription(harness)
        second = (await access_entries(harness, code))[1]
        # Hide who looked: the pharmacy's code becomes another one.
        await tamper(harness, "UPDATE access_log SET actor_code = 'P-OTHER' WHERE id = :id", id=second.id)
        done = await erx(harness, "audit", "verify", "--no-progress")
        assert done.returncode == 1
        assert f"chain {code}, entry id {second.id}, seq 2" in done.stdout
        assert "edited" in done.stdout

    async def test_a_removed_entry_is_caught(self, harness: Harness) -> None:
        code = await busy_prescription(harness)
        entries = await access_entries(harness, code)
        await tamper(harness, "DELETE FROM access_log WHERE id = :id", id=entries[1].id)
        done = await erx(harness, "audit", "verify", "--no-progress")
        assert done.returncode == 1
        assert f"chain {code}, entry id {entries[2].id}, seq 3" in done.stdout

    async def test_entries_cut_off_the_end_are_caught(self, harness: Harness) -> None:
        code = await busy_prescription(harness)
        entries = await access_entries(harness, code)
        await tamper(harness, "DELETE FROM access_log WHERE id = :id", id=entries[-1].id)
        done = await erx(harness, "audit", "verify", "--no-progress")
        assert done.returncode == 1
        assert f"chain {code}" in done.stdout and "removed" in done.stdout

    @pytest.mark.postgres_only
    async def test_concurrent_appends_to_one_chain_neither_fork_nor_skip(self, pg_harness: Harness) -> None:
        code = f"01001{secrets.token_hex(4).upper()[:7]}-c"

        async def append(n: int) -> None:
            async with pg_harness.runtime.database.sessionmaker() as session, session.begin():
                await audit.record_access(
                    session,
                    prescription_code=code,
                    actor_kind=audit.ActorKind.PHARMACY,
                    actor_code=f"P{n}",
                    action=audit.AccessAction.LOOKUP,
                )
                # Hold the chain a moment, so the others really wait on its head.
                await session.execute(text("SELECT pg_sleep(0.01)"))

        await asyncio.gather(*(append(n) for n in range(40)))
        entries = await access_entries(pg_harness, code)
        assert sorted(e.seq for e in entries) == list(range(1, 41))
        assert sorted(e.actor_code for e in entries) == sorted(f"P{n}" for n in range(40))
        async with pg_harness.runtime.database.sessionmaker() as session:
            head = await session.get(AccessLogHead, code)
        assert head is not None and head.seq == 40
        done = await erx(pg_harness, "audit", "verify", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr


async def counts(harness_settings_url: Harness) -> tuple[int, int]:
    async with harness_settings_url.runtime.database.sessionmaker() as session:
        entries = (await session.execute(select(func.count()).select_from(AccessLogEntry))).scalar_one()
        written = (await session.execute(select(func.count()).select_from(Prescription))).scalar_one()
    return int(entries), int(written)


class TestBackupAndRestore:
    async def test_restores_into_a_fresh_database_and_verifies_it(
        self, harness: Harness, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        codes = [await busy_prescription(harness) for _ in range(3)]
        before = await counts(harness)
        archive = tmp_path / "erx.backup"
        done = await erx(harness, "backup", str(archive))
        assert done.returncode == 0, done.stdout + done.stderr
        assert archive.stat().st_size > 0
        # A backup never overwrites.
        assert (await erx(harness, "backup", str(archive))).returncode == 2

        fresh_dir = tmp_path / "fresh"
        if harness.engine == "postgresql":
            cluster: Cluster = request.getfixturevalue("pg_cluster")
            name = f"erx_restore_{secrets.token_hex(4)}"
            await cluster.execute(f'CREATE DATABASE "{name}"')
            fresh = make_settings(fresh_dir, cluster.url(name), identity_key=_identity_key(harness))
        else:
            fresh = make_settings(fresh_dir, None, identity_key=_identity_key(harness))
        restored = await asyncio.to_thread(erx_command, fresh, "restore", str(archive), "--no-progress")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "chains hold" in restored.stdout
        assert "prescriptions verify with their prescribers' keys" in restored.stdout
        # Restoring over what is there needs saying so.
        again = await asyncio.to_thread(erx_command, fresh, "restore", str(archive), "--no-progress")
        assert again.returncode == 2 and "not empty" in again.stdout

        there = Harness(fresh)
        try:
            assert await counts(there) == before
            assert before[1] == 3
            # The restored database is a working one: a chain continues where it stopped.
            async with there.runtime.database.sessionmaker() as session, session.begin():
                await audit.record_access(
                    session,
                    prescription_code=codes[0],
                    actor_kind=audit.ActorKind.ADMIN,
                    actor_code="restore-check",
                    action=audit.AccessAction.READ,
                )
            assert [e.seq for e in await access_entries(there, codes[0])] == [1, 2, 3, 4, 5]
        finally:
            await there.close()
        if harness.engine == "postgresql":
            await cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def test_a_tampered_restore_fails_verification(
        self, harness: Harness, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        code = await busy_prescription(harness)
        await tamper(harness, "UPDATE prescription SET kind = 'n' WHERE code = :code", code=code)
        archive = tmp_path / "erx.backup"
        assert (await erx(harness, "backup", str(archive))).returncode == 0
        fresh_dir = tmp_path / "fresh"
        if harness.engine == "postgresql":
            cluster: Cluster = request.getfixturevalue("pg_cluster")
            name = f"erx_restore_{secrets.token_hex(4)}"
            await cluster.execute(f'CREATE DATABASE "{name}"')
            fresh = make_settings(fresh_dir, cluster.url(name), identity_key=_identity_key(harness))
        else:
            fresh = make_settings(fresh_dir, None, identity_key=_identity_key(harness))
        restored = await asyncio.to_thread(erx_command, fresh, "restore", str(archive), "--no-progress")
        assert restored.returncode == 1
        assert f"bad signature {code}" in restored.stdout
        if harness.engine == "postgresql":
            await cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TestTheBenchWritesTheSameChain:
    def test_the_seeds_first_link_is_kit_audits(self) -> None:
        from datetime import UTC, datetime

        from bench.seed.prescriptions import first_link

        entry: dict[str, Any] = {
            "at": datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC),
            "prescription_code": "01001AAAAAAA-c",
            "actor_kind": "facility",
            "actor_code": "01001",
            "action": "create",
        }
        assert first_link(entry) == audit.chain_hash(
            "", 1, audit.content_digest(**entry, client_address=None)
        )

    @pytest.mark.postgres_only
    async def test_the_limit_apps_append_verifies(self, pg_harness: Harness) -> None:
        import asyncpg

        from bench.minimal import sql
        from kit.time import utcnow

        url = pg_harness.settings.resolved_database_url.replace("postgresql+asyncpg", "postgresql")
        conn = await asyncpg.connect(url)
        try:
            for n in range(3):
                await conn.fetchval(
                    sql.INSERT_ACCESS_LOG, utcnow(), "01001BENCH01-c", "pharmacy", f"P{n}", "lookup", None
                )
        finally:
            await conn.close()
        async with pg_harness.runtime.database.sessionmaker() as session, session.begin():
            await audit.record_access(
                session,
                prescription_code="01001BENCH01-c",
                actor_kind=audit.ActorKind.ADMIN,
                actor_code="a",
                action=audit.AccessAction.READ,
                client_address="10.0.0.1",
            )
        assert [e.seq for e in await access_entries(pg_harness, "01001BENCH01-c")] == [1, 2, 3, 4]
        done = await erx(pg_harness, "audit", "verify", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr


def _identity_key(harness: Harness) -> str | None:
    """A restore reads the identity numbers with the key they were written under: the key travels
    beside the backup (ERX_IDENTITY_KEY in production), never inside it."""
    key = harness.settings.identity_key
    return key.get_secret_value() if key is not None else None
