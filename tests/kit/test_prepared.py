"""Prepared statements run on the driver inside the request's own transaction, on both engines."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text

from kit.idempotency import _COMPLETE, _RESERVE, TABLE
from kit.prepared import Prepared
from kit.time import utcnow
from tests.conftest import Harness

_BY_KEY = Prepared(
    select(TABLE.c.id, TABLE.c.scope, TABLE.c.status_code, TABLE.c.created_at).where(
        TABLE.c.scope == bindparam("r_scope"), TABLE.c.key == bindparam("r_key")
    )
)


def _reservation(key: str) -> dict[str, object]:
    return {"r_scope": "test:prepared", "r_key": key, "r_hash": "h", "r_at": utcnow()}


class TestPrepared:
    async def test_a_rollback_undoes_what_it_wrote(self, harness: Harness) -> None:
        sessions = harness.runtime.database.sessionmaker
        async with sessions() as session, session.begin():
            # A statement through SQLAlchemy first, then one on the driver: one transaction.
            await session.execute(text("SELECT 1"))
            assert (await _RESERVE.first(session, _reservation("gone"))) is not None
            await session.rollback()
        async with sessions() as session, session.begin():
            assert await _BY_KEY.first(session, {"r_scope": "test:prepared", "r_key": "gone"}) is None

    async def test_first_in_a_transaction_then_commit_then_a_new_transaction(self, harness: Harness) -> None:
        sessions = harness.runtime.database.sessionmaker
        async with sessions() as session:
            async with session.begin():
                # The driver path opens the transaction itself when it comes first.
                row = await _RESERVE.first(session, _reservation("kept"))
                assert row is not None
                params = {"r_scope": "test:prepared", "r_id": row[0], "r_status": 201, "r_body": "{}"}
                assert await _COMPLETE.rows(session, params) == []
            async with session.begin():
                found = await _BY_KEY.first(session, {"r_scope": "test:prepared", "r_key": "kept"})
                assert found is not None and found.status_code == 201 and found.id == row.id
                # The column types' result processors apply: stored instants come back in UTC.
                assert found.created_at.utcoffset() is not None
        # A second reservation of the same key is refused by the unique index, not raised.
        async with sessions() as session, session.begin():
            assert await _RESERVE.first(session, _reservation("kept")) is None

    def test_an_expanding_in_is_refused_at_build_time(self) -> None:
        with pytest.raises(ValueError, match="expanding IN"):
            Prepared(select(TABLE.c.id).where(TABLE.c.key.in_(["a", "b"])))
