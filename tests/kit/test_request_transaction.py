"""A request's transaction (kit.database.request_transaction) on both engines: what it commits and
rolls back, the work it runs afterwards, and that it never keeps a pooled connection."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.database import after_transaction, on_rollback, request_transaction
from kit.idempotency import _RESERVE, TABLE
from kit.prepared import Prepared
from kit.time import utcnow
from tests.conftest import Harness

_BY_KEY = Prepared(
    select(TABLE.c.id).where(TABLE.c.scope == bindparam("r_scope"), TABLE.c.key == bindparam("r_key"))
)
SCOPE = "test:request-transaction"


class Refused(Exception):
    pass


def _reservation(key: str) -> dict[str, object]:
    return {"r_scope": SCOPE, "r_key": key, "r_hash": "h", "r_at": utcnow()}


async def _stored(harness: Harness, key: str) -> bool:
    async with harness.runtime.database.sessionmaker() as session, session.begin():
        return await _BY_KEY.first(session, {"r_scope": SCOPE, "r_key": key}) is not None


def _connections_in_use(harness: Harness) -> int:
    """Connections the engine's pool has handed out (SQLite opens one per use and keeps none)."""
    pool = harness.runtime.database.engine.sync_engine.pool
    checkedout = getattr(pool, "checkedout", None)
    return int(checkedout()) if checkedout is not None else 0


class TestRequestTransaction:
    async def test_the_block_commits_and_the_work_after_runs_with_the_connection_back(
        self, harness: Harness
    ) -> None:
        seen: list[int] = []

        async def after() -> None:
            seen.append(_connections_in_use(harness))

        async with request_transaction(harness.runtime.database) as session:
            after_transaction(session, after)
            assert await _RESERVE.first(session, _reservation("kept")) is not None
            if harness.engine == "postgresql":  # SQLite's second writer would wait on the lock
                # Nothing is visible to others before the block ends.
                assert not await _stored(harness, "kept")
        assert await _stored(harness, "kept")
        # The work ran once, after the commit had let go of the connection.
        assert seen == [0]
        assert _connections_in_use(harness) == 0

    async def test_an_error_rolls_back_then_runs_the_rollback_work_and_is_raised(
        self, harness: Harness
    ) -> None:
        order: list[str] = []

        async def on_refusal(fresh: AsyncSession) -> None:
            order.append("on_rollback")
            # The refusal's trace goes in a transaction of its own, which commits.
            assert await _RESERVE.first(fresh, _reservation("trace")) is not None

        async def after() -> None:
            order.append("after")

        async def refused_request() -> None:
            async with request_transaction(harness.runtime.database) as session:
                on_rollback(session, on_refusal)
                after_transaction(session, after)
                assert await _RESERVE.first(session, _reservation("undone")) is not None
                raise Refused

        with pytest.raises(Refused):
            await refused_request()
        assert order == ["on_rollback", "after"]
        assert not await _stored(harness, "undone")
        assert await _stored(harness, "trace")
        assert _connections_in_use(harness) == 0

    async def test_a_block_that_sends_nothing_holds_no_connection(self, harness: Harness) -> None:
        async with request_transaction(harness.runtime.database) as session:
            # The session begins on its first statement: none yet, so nothing is checked out.
            assert _connections_in_use(harness) == 0
            assert not session.in_transaction()
        assert _connections_in_use(harness) == 0
