"""Run Alembic migrations programmatically (`erx db upgrade`, `erx serve`, tests)."""

from __future__ import annotations

import asyncio
from importlib import resources

from alembic import command
from alembic.config import Config

from erx.settings import Settings


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("erx") / "migrations"))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Apply pending migrations (every branch head: contexts add their own branches)."""
    command.upgrade(alembic_config(settings), revision)


async def upgrade_async(settings: Settings, revision: str = "heads") -> None:
    # env.py drives its own event loop, so run it off the caller's loop.
    await asyncio.to_thread(upgrade, settings, revision)
