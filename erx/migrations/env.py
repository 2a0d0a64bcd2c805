"""Alembic environment: runs the migrations on the async engine of the settings."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from erx.models import load_all_models
from kit.database import create_engine
from kit.settings import Settings, get_settings

target_metadata = load_all_models()


def _settings() -> Settings:
    given = context.config.attributes.get("settings")
    return given if isinstance(given, Settings) else get_settings()


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render SQLModel's AutoString as plain sa.String so migrations do not import sqlmodel."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Skip PostgreSQL-only indexes (trigram GIN) when comparing against SQLite."""
    if type_ == "index" and context.get_context().dialect.name != "postgresql":
        return not getattr(obj, "dialect_options", {}).get("postgresql", {}).get("using")
    return True


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # Outside the transaction (SQLite ignores the pragma inside one): a batch migration rebuilds
    # a table other tables point at, which an enforced foreign key refuses mid-way.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(connection, on=False)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            # What the keys would have refused, checked once at the end (and rolled back).
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration left rows whose foreign key is broken: {broken[:5]}")


async def _run_async() -> None:
    engine = create_engine(_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=_settings().resolved_database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(_run_async())
