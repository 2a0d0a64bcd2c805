"""Hot statements run as they are: built and compiled once, sent straight to asyncpg on PostgreSQL.

SQLAlchemy's execution path (session, compiled cache lookup, execution context, result
metadata, the greenlet bridge) costs some 100-150 µs of CPU per statement; asyncpg alone costs
40-60. A `Prepared` keeps the SQL SQLAlchemy compiled for the asyncpg dialect, its parameter
order and its types' bind and result processors, and runs it on the driver connection of the
request's own transaction, so nothing about atomicity changes: same connection, same
transaction, same SQL. On other engines (SQLite) it goes through the session as before.

Only statements whose failures are not part of the rules belong here: asyncpg's errors reach the
caller untranslated (no `IntegrityError`), so a statement whose conflict the code expects to
catch stays on the session.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
_DRIVER = "kit.prepared.driver"
# The connection, not the statement, failed: the server went away or the socket broke.
_GONE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
)
# Bind processors by parameter name, and result processors by column.
_Processors = tuple[dict[str, Any], list[Any]]


class Prepared:
    """One statement, compiled once for asyncpg; `rows()` runs it in the session's transaction."""

    def __init__(self, statement: Executable, *, elsewhere: Executable | None = None) -> None:
        """`elsewhere` stands in on other engines when `statement` is PostgreSQL's own dialect."""
        self.statement = statement
        self._elsewhere = statement if elsewhere is None else elsewhere
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("an expanding IN has no fixed SQL: pass its values as an array (= ANY)")
        self.sql = compiled.string
        order = tuple(compiled.positiontup or ())
        binds = compiled.binds
        self._order = order
        # Literal values compiled into the statement (a `>= 0`) travel as parameters.
        self._fixed = {name: binds[name].value for name in order if binds[name].value is not None}
        self._bind_types = {name: binds[name].type for name in order}
        columns = list(getattr(statement, "exported_columns", ()))
        self._result_types = [column.type for column in columns]
        self._row = namedtuple("Row", [column.key for column in columns], rename=True) if columns else None
        # Processors are taken from the engine's own dialect, which carries what some types need
        # (the keys of encrypted columns, kit.pii); one set per engine.
        self._processors: weakref.WeakKeyDictionary[Dialect, _Processors] = weakref.WeakKeyDictionary()

    def _processors_for(self, dialect: Dialect) -> _Processors:
        found = self._processors.get(dialect)
        if found is None:
            # Each type's conversion as the dialect applies it (JSON encoded and decoded, our
            # TypeDecorators); a type that needs the column's wire type to choose one (numerics)
            # is left to asyncpg's own codec, which gives what that choice would.
            bind = {
                name: processor
                for name, type_ in self._bind_types.items()
                if (processor := type_.dialect_impl(dialect).bind_processor(dialect)) is not None
            }
            found = (bind, [_result_processor(type_, dialect) for type_ in self._result_types])
            self._processors[dialect] = found
        return found

    async def rows(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The result rows (attribute, index and slice access, as SQLAlchemy's rows give)."""
        given = dict(params or {})
        dialect = session.get_bind().dialect
        if dialect.name != "postgresql":
            result = await session.execute(self._elsewhere, given)
            return list(result.all()) if getattr(result, "returns_rows", False) else []
        bind, processors = self._processors_for(dialect)
        values = []
        for name in self._order:
            value = given[name] if name in given else self._fixed[name]
            processor = bind.get(name)
            values.append(processor(value) if processor is not None and value is not None else value)
        try:
            # The BEGIN this may send fails on a dead connection too, not only the statement.
            driver = await driver_of(session)
            records = await driver.fetch(self.sql, *values)
        except Exception as exc:
            gone = (*_GONE, dialect.loaded_dbapi.InterfaceError, dialect.loaded_dbapi.OperationalError)
            if not isinstance(exc, gone) and not await _given_up(session, exc):
                raise
            # SQLAlchemy never saw this error: tell its pool the connection is dead, or it would
            # hand the same broken connection out again after the database comes back.
            await (await session.connection()).invalidate(exc)
            # As SQLAlchemy reports a lost connection, so the failsafe answers 503, not 500.
            raise OperationalError(self.sql, None, exc, connection_invalidated=True) from exc
        if self._row is None:
            return list(records)
        make: Any = self._row
        if not any(processors):
            return [make(*record) for record in records]
        return [
            make(*(p(v) if p is not None else v for p, v in zip(processors, record, strict=True)))
            for record in records
        ]

    async def first(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> Any | None:
        found = await self.rows(session, params)
        return found[0] if found else None


async def _given_up(session: AsyncSession, exc: Exception) -> bool:
    """Whether asyncpg closed the connection itself on this error, as it does once its protocol broke.

    A connection PostgreSQL ended while it sat idle (a restart) has read the server's FATAL
    message but not yet the close: its next operation fails with `InternalClientError: cannot
    switch to state 15; another operation (2) is in progress` and asyncpg aborts it. SQLAlchemy's
    dialect asks the same question (`is_disconnect`) of the errors it sees; a statement that
    merely failed (a bug, bad data) leaves the connection open and stays a 500.
    """
    if isinstance(exc, DBAPIError):
        return False  # SQLAlchemy saw this one (checking out, connecting) and judged it itself
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    return driver is not None and bool(driver.is_closed())


def _result_processor(type_: Any, dialect: Dialect) -> Any:
    try:
        return type_.dialect_impl(dialect).result_processor(dialect, None)
    except TypeError:  # asyncpg's numeric types choose by the column's type oid
        return None


async def driver_of(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's current transaction, BEGIN sent.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its first statement; a statement sent
    past it must find the transaction open, so it is opened here the same way. Remembered per
    transaction: a session that commits and begins again gets the new one.
    """
    transaction = session.sync_session.get_transaction()
    known = session.info.get(_DRIVER)
    if known is not None and known[0] is transaction:
        return known[1]
    connection = await session.connection()
    adapted = (await connection.get_raw_connection()).dbapi_connection
    assert adapted is not None
    # The adapter's own lazy begin (SQLAlchemy 2.x AsyncAdapt_asyncpg_connection), pinned by the lock file.
    if adapted._transaction is None and adapted.isolation_level != "autocommit":
        await adapted._start_transaction()
    driver = adapted.driver_connection
    session.info[_DRIVER] = (session.sync_session.get_transaction(), driver)
    return driver
