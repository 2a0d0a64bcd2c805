"""`erx drugs ...`: the national drug catalogue."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from eprescribe.catalogue import service
from kit.cli import console, progress_bar, run_with_runtime
from kit.runtime import Runtime

drugs_app = typer.Typer(help="The national drug catalogue.", no_args_is_help=True)


def read_catalogue_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) pairs; line numbers count the header as line 1."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


def shipped_catalogue() -> Path:
    """The demo catalogue that ships with the package."""
    return Path(__file__).parent / "data" / "drugs.csv"


async def import_catalogue(
    runtime: Runtime, path: Path, *, show_progress: bool = True
) -> service.ImportReport:
    rows = list(read_catalogue_csv(path))
    with progress_bar("Importing", enabled=show_progress) as progress:
        task = progress.add_task(path.name, total=len(rows))
        async with runtime.database.sessionmaker() as session, session.begin():
            return await service.import_drugs(session, rows, on_row=lambda: progress.advance(task))


@drugs_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with the catalogue columns"),
    ],
) -> None:
    """Load a catalogue CSV; report rejected rows with their line number and reason."""
    report = run_with_runtime(ctx, lambda runtime: import_catalogue(runtime, file))
    rejected = report.rejected
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
