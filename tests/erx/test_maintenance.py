"""`erx maintenance purge`: what served its purpose goes, what is fresh stays, the access log stays."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlmodel import col

from kit import audit, maintenance
from kit.audit import AccessLogEntry
from kit.idempotency import IdempotencyRecord
from kit.throttle import ThrottleCounter
from kit.time import utcnow
from kit.web_session import WebSession
from tests.clients import erx
from tests.conftest import Harness, HarnessFactory


async def count(harness: Harness, model: type, *where: object) -> int:
    async with harness.runtime.database.sessionmaker() as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


def session_row(name: str, expires_in: timedelta) -> WebSession:
    now = utcnow()
    return WebSession(
        id_hash=name.ljust(64, "0"),
        kind="patient",
        client_id="01001AAAAAAA-c",
        credentials_version=0,
        csrf_token="x" * 43,
        created_at=now - timedelta(hours=9),
        last_seen_at=now - timedelta(hours=1),
        expires_at=now + expires_in,
    )


class TestPurge:
    async def test_removes_rows_past_retention_and_keeps_the_rest(self, harness: Harness) -> None:
        now = utcnow()
        window = timedelta(seconds=harness.settings.throttle_window_seconds)
        retention = timedelta(hours=harness.settings.idempotency_retention_hours)
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            for name, age in (("old-1", retention + timedelta(minutes=5)), ("old-2", retention * 3)):
                session.add(IdempotencyRecord(scope="s", key=name, request_hash="h", created_at=now - age))
            session.add(IdempotencyRecord(scope="s", key="fresh", request_hash="h", created_at=now))
            session.add(ThrottleCounter(key="addr:stale", expires_at=now - window, failures=9))
            session.add(ThrottleCounter(key="addr:live", expires_at=now + window, failures=9))
            session.add(session_row("expired", -timedelta(minutes=1)))
            session.add(session_row("live", timedelta(minutes=20)))
            await audit.record_access(
                session,
                prescription_code="01001AAAAAAA-c",
                actor_kind=audit.ActorKind.PHARMACY,
                actor_code="P1",
                action="lookup",
                at=now - timedelta(days=400),
            )
        log_before = await count(harness, AccessLogEntry)

        done = await erx(harness, "maintenance", "purge")

        assert done.returncode == 0, done.stdout + done.stderr
        assert "idempotency_record" in done.stdout and "access log (never purged)" in done.stdout
        keys = col(IdempotencyRecord.key)
        assert await count(harness, IdempotencyRecord, keys.in_(["old-1", "old-2"])) == 0
        assert await count(harness, IdempotencyRecord, keys == "fresh") == 1
        assert await count(harness, ThrottleCounter) == 1
        assert await count(harness, ThrottleCounter, col(ThrottleCounter.key) == "addr:live") == 1
        assert await count(harness, WebSession) == 1
        assert await count(harness, AccessLogEntry) == log_before

    async def test_deletes_in_batches_until_nothing_is_left(self, make_harness: HarnessFactory) -> None:
        harness = await make_harness("postgresql", purge_batch_size=3)
        old = utcnow() - timedelta(days=30)
        async with harness.runtime.database.sessionmaker() as session, session.begin():
            for n in range(10):
                session.add(IdempotencyRecord(scope="s", key=f"k{n}", request_hash="h", created_at=old))
        counts = await maintenance.purge(harness.runtime)
        assert counts == {"idempotency_record": 10, "throttle_counter": 0, "web_session": 0}
        assert await count(harness, IdempotencyRecord) == 0
