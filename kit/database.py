"""Engine, sessions and the column types every context shares."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

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
    func,
    insert,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from kit import pii
from kit.prepared import Prepared
from kit.settings import Settings

if TYPE_CHECKING:
    from typing import TypeAlias

    from sqlalchemy import Row

    # A result row of any width (SQLAlchemy 2.1 types rows by their columns).
    AnyRow: TypeAlias = Row[*tuple[Any, ...]]

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


def _sha256_hex(text: object) -> str:
    return hashlib.sha256(str(text).encode()).hexdigest()


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
        # The audit chain's hash (kit.audit.sha256_hex); PostgreSQL has sha256() built in.
        dbapi_connection.create_function("erx_sha256", 1, _sha256_hex, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # SQLite has one writer: take the write lock up front so concurrent requests queue
        # instead of failing with "database is locked" when a reader tries to upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _unique_statement_name() -> str:
    return f"__erx_{uuid.uuid4().hex}__"


def connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's connection arguments for this deployment.

    Behind PgBouncer in transaction mode (before 1.21, or without `max_prepared_statements`)
    consecutive transactions of one client connection run on different server connections, so
    a prepared statement cached on one is unknown on the next: no statement caches, and each
    prepared statement gets a name of its own so two never collide on a server connection.
    """
    if not settings.database_pgbouncer:
        # Short statements only: planning them with JIT costs more than it saves. (PgBouncer
        # refuses startup parameters: there, set `ALTER ROLE erx SET jit = off` once.)
        return {"server_settings": {"jit": "off"}}
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """An engine on the settings' database, carrying the keys its encrypted columns use."""
    engine = _engine(settings, url)
    pii.attach(engine.dialect, pii.PiiKeys.load(settings))
    return engine


def _engine(settings: Settings, url: str | None) -> AsyncEngine:
    url = url or settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=settings.database_echo, poolclass=NullPool, hide_parameters=not settings.database_echo
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=settings.database_echo,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # No pre-ping: it costs a round trip on every checkout. A connection the server dropped
        # fails its request once (503); SQLAlchemy then discards the whole pool, and the next
        # checkouts open fresh connections.
        pool_pre_ping=False,
        pool_recycle=settings.database_pool_recycle_seconds,
        # Waiting longer only piles requests up: past this the request is a 503 (kit.failsafe).
        pool_timeout=settings.database_pool_timeout_seconds,
        # An error's text never quotes the statement's values (identity numbers, names).
        hide_parameters=True,
        connect_args=connect_args(settings),
    )


class Database:
    """The engine and session factory of one running service (or of its read replica)."""

    def __init__(self, settings: Settings, url: str | None = None, *, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only
        # A replica refuses writes itself (hot standby); nothing here writes through it.
        self.engine = create_engine(settings, url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def capacity(self) -> int:
        """The most connections this engine's pool may hold (0: unpooled SQLite)."""
        return 0 if self.dialect == "sqlite" else 2 * self.settings.database_pool_size

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


async def insert_with_lines(
    session: AsyncSession,
    head: Table,
    values: dict[str, Any],
    lines: Table,
    parent: str,
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflict: bool = False,
) -> int | None:
    """Insert a head row and its lines (each given the head's new id in column `parent`).

    One round trip on PostgreSQL, where the lines come as one array per column and take the new
    id from a data-modifying CTE; two on SQLite, which has neither. With `skip_conflict` a head
    that breaks a unique constraint is not inserted (nor its lines) and None is returned instead
    of raising. The statements are built once per shape, so the compiled SQL is reused.
    """
    fields = tuple(rows[0])
    head_fields = tuple(values)
    params = {f"h_{name}": value for name, value in values.items()}
    if session.get_bind().dialect.name != "postgresql":
        stmt = _head_insert(sqlite.insert, head, head_fields, skip_conflict)
        new_id = (await session.execute(stmt, params)).scalar_one_or_none()
        if new_id is not None:
            await session.execute(insert(lines), [{parent: new_id, **row} for row in rows])
        return None if new_id is None else int(new_id)
    params |= {f"l_{name}": [row[name] for row in rows] for name in fields}
    prepared = _insert_with_lines_pg(head, head_fields, lines, parent, fields, skip_conflict)
    first = await prepared.first(session, params)
    return None if first is None else int(first[0])


@functools.cache
def _head_insert(dialect_insert: Any, head: Table, fields: tuple[str, ...], skip_conflict: bool) -> Any:
    stmt = dialect_insert(head).values(
        {name: bindparam(f"h_{name}", type_=head.c[name].type) for name in fields}
    )
    if skip_conflict:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(head.c.id)


@functools.cache
def _insert_with_lines_pg(
    head: Table,
    head_fields: tuple[str, ...],
    lines: Table,
    parent: str,
    fields: tuple[str, ...],
    skip_conflict: bool,
) -> Prepared:
    created = _head_insert(postgresql.insert, head, head_fields, skip_conflict).cte("created")
    # asyncpg sends each array typed ($n::INTEGER[]): no casts, and NULLs keep their column's type.
    arrays = [bindparam(f"l_{name}", type_=postgresql.ARRAY(lines.c[name].type)) for name in fields]
    given = func.unnest(*arrays).table_valued(*fields).render_derived(name="given")
    select_rows = (
        select(created.c.id, *(given.c[name] for name in fields)).select_from(created).join(given, true())
    )
    stmt = insert(lines).from_select([parent, *fields], select_rows).add_cte(created)
    return Prepared(stmt.returning(lines.c[parent]))


RollbackWork = Callable[[AsyncSession], Awaitable[None]]


def on_rollback(session: AsyncSession, work: RollbackWork) -> None:
    """Run `work` in a fresh transaction if this session's transaction rolls back.

    A refused request must leave no trace of its changes, yet some facts about it must stay:
    an access-log entry, a failed guess for throttling. They are written after the rollback (on
    SQLite a second transaction during the first would wait on its own write lock).
    """
    session.info.setdefault("on_rollback", []).append(work)


AfterWork = Callable[[], Awaitable[None]]


def after_transaction(session: AsyncSession, work: AfterWork) -> None:
    """Run `work` once the request's transaction has committed or rolled back and let go of
    its connection: a wait there holds no connection (nor SQLite's write lock) asleep.
    """
    session.info.setdefault("after_transaction", []).append(work)


async def run_in_transaction(database: Database, works: list[RollbackWork]) -> None:
    async with database.sessionmaker() as session, session.begin():
        for work in works:
            await work(session)


@asynccontextmanager
async def request_transaction(database: Database) -> AsyncIterator[AsyncSession]:
    """One request's transaction: commit when the block ends, roll back (then run the
    session's `on_rollback` work) on error, and run its `after_transaction` work either way.

    The session begins on its first statement and a commit lets go of the connection, so the
    way through costs one hop into SQLAlchemy's greenlet, not three (begin, commit, close).
    """
    session = database.sessionmaker()
    try:
        yield session
        await session.commit()
    except BaseException:
        pending: list[RollbackWork] = session.info.pop("on_rollback", [])
        await session.close()  # rolls back and lets go of the connection
        if pending:
            await run_in_transaction(database, pending)
        raise
    finally:
        after: list[AfterWork] = session.info.pop("after_transaction", [])
        for work in after:
            await work()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Open one transaction per request: commit when the route returns, roll back on error."""
    async with request_transaction(request.app.state.runtime.database) as session:
        yield session


# scope="function" commits before the response is sent, so a 201 is never followed by a
# failed commit.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the read replica (READ_DATABASE_URL), else on the primary; for public reads.

    A replica lags the primary by its replication delay: what was just written may not show
    yet. Only reads that may be that stale use it; nothing here writes.
    """
    database: Database = request.app.state.runtime.read_database
    session = database.sessionmaker()
    try:
        if database.dialect == "postgresql":
            # No BEGIN and COMMIT around the reads: under READ COMMITTED each statement takes
            # its own snapshot inside a transaction too, so they bought nothing but two round trips.
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
    finally:
        # Nothing to commit (nothing writes here): closing lets go of the connection.
        await session.close()


ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]


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
