"""`erx drugs ...` and `erx admin ...`: catalogue imports and health-department clients."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from eprescribe import service
from erx.runtime import Runtime
from erx.settings import get_settings

drugs_app = typer.Typer(help="The national drug catalogue.", no_args_is_help=True)
admin_app = typer.Typer(help="Health-department API clients.", no_args_is_help=True)
console = Console()


def read_catalogue_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) pairs; line numbers count the header as line 1."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


async def import_catalogue(
    runtime: Runtime, path: Path, *, show_progress: bool = True
) -> service.ImportReport:
    rows = list(read_catalogue_csv(path))
    progress = Progress(
        TextColumn("[bold]Importing[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task(path.name, total=len(rows))
        async with runtime.database.sessionmaker() as session, session.begin():
            report = await service.import_drugs(session, rows, on_row=lambda: progress.advance(task))
    return report


@drugs_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with the catalogue columns"),
    ],
) -> None:
    """Load a catalogue CSV; report rejected rows with their line number and reason."""
    from erx.migrate import upgrade

    settings = get_settings()
    upgrade(settings)
    runtime = Runtime.build(settings)

    async def run() -> service.ImportReport:
        try:
            return await import_catalogue(runtime, file)
        finally:
            await runtime.database.dispose()

    report = asyncio.run(run())
    rejected = report.rejected or []
    console.print(
        f"[green]{report.added} added[/], [cyan]{report.updated} updated[/], "
        f"[{'red' if rejected else 'green'}]{len(rejected)} rejected[/]"
    )
    if rejected:
        table = Table("line", "reason", title="Rejected rows")
        for line_no, reason in rejected:
            table.add_row(str(line_no), reason)
        console.print(table)
        raise typer.Exit(code=1)


@admin_app.command("create-client")
def create_admin_client(name: Annotated[str, typer.Argument(help="Who uses this client")]) -> None:
    """Create a health-department client and print its secret once."""
    from erx.migrate import upgrade

    settings = get_settings()
    upgrade(settings)
    runtime = Runtime.build(settings)

    async def run() -> tuple[str, str]:
        try:
            async with runtime.database.sessionmaker() as session, session.begin():
                client, secret = await service.create_admin_client(session, runtime.hasher, name=name)
                return client.client_id, secret
        finally:
            await runtime.database.dispose()

    client_id, secret = asyncio.run(run())
    console.print(f"client_id:     [bold]{client_id}[/]\nclient_secret: [bold]{secret}[/]  (shown once)")
