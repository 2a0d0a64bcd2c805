"""COPY into the bench database, and the progress bars every stage of the seed shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Copier:
    """COPY rows given as dicts into a table, with the column list reflected from the database."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._columns: dict[str, list[tuple[str, bool]]] = {}

    async def columns(self, table: str) -> list[tuple[str, bool]]:
        if table not in self._columns:
            rows = await self.conn.fetch(
                "SELECT column_name, is_nullable = 'NO' AND column_default IS NULL AS required "
                "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
                "ORDER BY ordinal_position",
                table,
            )
            if not rows:
                raise RuntimeError(f"table {table} does not exist; did the migrations run?")
            self._columns[table] = [(r["column_name"], r["required"]) for r in rows]
        return self._columns[table]

    async def copy(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = await self.columns(table)
        given = set(rows[0])
        missing = [name for name, required in columns if required and name not in given]
        unknown = given - {name for name, _ in columns}
        if missing or unknown:
            raise RuntimeError(
                f"{table}: the seed lacks required columns {missing} / has unknown {sorted(unknown)}"
            )
        names = [name for name, _ in columns if name in given]
        await self.conn.copy_records_to_table(
            table, records=[tuple(row[n] for n in names) for row in rows], columns=names
        )


def progress_bars(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
