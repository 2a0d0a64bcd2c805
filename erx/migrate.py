"""Run the schema migrations of every table owner (`erx db upgrade`, `erx serve`, tests).

Each package that owns tables keeps its revisions next to its models (`<package>/migrations/`);
the history is one graph across them, joined by merge revisions in `erx/migrations/versions/`,
so there is always exactly one head.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from kit.app import NotReady, ReadinessCheck
from kit.database import create_engine
from kit.runtime import Runtime
from kit.settings import Settings

# The packages that own tables, each with its `migrations/` folder of revisions.
OWNERS = (
    "kit",
    "eprescribe.registry",
    "eprescribe.catalogue",
    "eprescribe.prescriptions",
    "pharmacy_gateway.dispensing",
    "pharmacy_gateway.prices",
)
# Revisions of the first, single-folder history (before the tables got their owners). A
# database at all three of its heads has exactly the schema of the first merge revision.
RETIRED_HEADS = frozenset({"0002", "0003", "0004"})
RETIRED = RETIRED_HEADS | {"0001"}
FIRST_MERGE = "20261202_merge"


def version_locations() -> list[str]:
    owners = [str(resources.files(owner) / "migrations") for owner in OWNERS]
    return [*owners, str(resources.files("erx") / "migrations" / "versions")]


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("erx") / "migrations"))
    # Alembic splits this option on the separator; paths hold no spaces here.
    config.set_main_option("path_separator", "space")
    config.set_main_option("version_locations", " ".join(version_locations()))
    # Revisions are named by date and slug: `alembic revision --rev-id 20261224_what_changed`.
    config.set_main_option("file_template", "%%(rev)s")
    config.attributes["settings"] = settings
    return config


def heads(settings: Settings) -> tuple[str, ...]:
    """The heads of the migration graph (one, by construction; a test keeps it so)."""
    return tuple(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def _read_current(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        await engine.dispose()


async def _restamp_retired(settings: Settings) -> None:
    """Move a database of the first history onto the new graph without touching its tables."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            current = await connection.run_sync(_current)
            if not current & RETIRED:
                return
            if current != RETIRED_HEADS:
                raise RuntimeError(
                    f"This database is part way through the first migration history ({sorted(current)}); "
                    "upgrade it with the release before this one, then again with this one"
                )
            await connection.execute(text("DELETE FROM alembic_version"))
            await connection.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:merge)"), {"merge": FIRST_MERGE}
            )
    finally:
        await engine.dispose()


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply pending migrations (only `erx db upgrade` and `erx serve` call this)."""
    if settings.is_sqlite:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(_restamp_retired(settings))
    command.upgrade(alembic_config(settings), revision)


async def upgrade_async(settings: Settings, revision: str = "head") -> None:
    # env.py drives its own event loop, so run it off the caller's loop.
    await asyncio.to_thread(upgrade, settings, revision)


def require_current_schema(settings: Settings) -> None:
    """Refuse to go on when the database is not at the migration head; never migrate here."""
    if settings.is_sqlite and not (settings.data_dir / "erx.sqlite3").exists():
        current: set[str] = set()
    else:
        current = asyncio.run(_read_current(settings))
    expected = set(heads(settings))
    if current != expected:
        state = ", ".join(sorted(current)) or "empty"
        raise RuntimeError(
            f"The database schema is not current ({state}; expected {', '.join(sorted(expected))}): "
            "run `erx db upgrade` first"
        )


def schema_readiness(settings: Settings) -> ReadinessCheck:
    """A `/readyz` check: the database's schema is at this release's migration head.

    The head is read from the migration graph once; each check reads `alembic_version`.
    """
    expected = set(heads(settings))

    async def schema_at_head(runtime: Runtime) -> None:
        async with runtime.database.engine.connect() as connection:
            current = await connection.run_sync(_current)
        if current != expected:
            state = ", ".join(sorted(current)) or "empty"
            raise NotReady(f"the schema is at {state}, this release needs {', '.join(sorted(expected))}")

    return schema_at_head
