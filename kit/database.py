"""Engine, sessions and the column types every context shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    Table,
    any_,
    bindparam,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from kit.settings import Settings

# Constraint names must be stable from the first migration on, or later ALTERs cannot name them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BIGINT = BigInteger().with_variant(Integer(), "sqlite")


def bigint_pk() -> Column[int]:
    """A 64-bit auto-incrementing primary key column (plain INTEGER on SQLite)."""
    return Column(BIGINT, primary_key=True, autoincrement=True)


class UTCDateTime(TypeDecorator[datetime]):
    """Store instants in UTC on every engine and always hand back aware datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares the stored text, so every value must share one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of the driver's deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # SQLite has one writer: take the write lock up front so concurrent requests queue
        # instead of failing with "database is locked" when a reader tries to upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=settings.database_echo, poolclass=NullPool)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=settings.database_echo,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
    )


class Database:
    """The engine and session factory of one running service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def upsert(session: AsyncSession, table: Table) -> Any:
    """An INSERT that takes ON CONFLICT clauses, in the dialect of the session's database.

    PostgreSQL and SQLite both speak `INSERT ... ON CONFLICT`; SQLAlchemy exposes it per dialect.
    """
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


RollbackWork = Callable[[AsyncSession], Awaitable[None]]


def on_rollback(session: AsyncSession, work: RollbackWork) -> None:
    """Run `work` in a fresh transaction if this session's transaction rolls back.

    A refused request must leave no trace of its changes, yet some facts about it must stay:
    an access-log entry, a failed guess for throttling. They are written after the rollback (on
    SQLite a second transaction during the first would wait on its own write lock).
    """
    session.info.setdefault("on_rollback", []).append(work)


async def run_in_transaction(database: Database, works: list[RollbackWork]) -> None:
    async with database.sessionmaker() as session, session.begin():
        for work in works:
            await work(session)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Open one transaction per request: commit when the route returns, roll back on error."""
    database: Database = request.app.state.runtime.database
    session = database.sessionmaker()
    try:
        async with session.begin():
            yield session
    except BaseException:
        pending: list[RollbackWork] = session.info.pop("on_rollback", [])
        await session.close()
        if pending:
            await run_in_transaction(database, pending)
        raise
    finally:
        await session.close()


# scope="function" commits before the response is sent, so a 201 is never followed by a
# failed commit.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


def one_of(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """`column` is one of the values of the list parameter `name`.

    One array parameter on PostgreSQL (`= ANY($1)`), so the statement's text is the same for
    every list and its compiled and prepared forms are reused; an expanding IN on SQLite.
    """
    found: ColumnElement[bool] = (
        column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
        if dialect == "postgresql"
        else column.in_(bindparam(name, expanding=True))
    )
    return found
