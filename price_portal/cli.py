"""`erx prices ...`: publish an outlet's price list from a CSV file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eprescribe import service as registry
from erx.errors import DomainError, NotFound
from erx.runtime import Runtime
from erx.settings import get_settings
from price_portal import service
from price_portal.exceptions import PriceListRejected

prices_app = typer.Typer(help="Listed prices of the public portal.", no_args_is_help=True)
console = Console()


async def import_prices(runtime: Runtime, connection_code: str, path: Path) -> service.PublishReport:
    """Publish a CSV price list for one outlet, all or nothing, as the gateway would."""
    text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    async with runtime.database.sessionmaker() as session, session.begin():
        pharmacy = await registry.get_pharmacy(session, connection_code)
        if pharmacy is None:
            raise NotFound(f"No outlet has the connection code {connection_code}")
        if pharmacy.status != "active":
            raise DomainError(
                f"Outlet {pharmacy.connection_code} is {pharmacy.status}; it cannot publish prices"
            )
        return await service.import_price_csv(session, pharmacy, text)


@prices_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV: registration_no,price,unit"),
    ],
    outlet: Annotated[str, typer.Option("--outlet", help="The outlet's connection code")],
) -> None:
    """Replace an outlet's listed prices from a CSV file; one bad row refuses the whole file."""
    from erx.migrate import upgrade

    settings = get_settings()
    upgrade(settings)
    runtime = Runtime.build(settings)

    async def run() -> service.PublishReport:
        try:
            return await import_prices(runtime, outlet, file)
        finally:
            await runtime.database.dispose()

    try:
        with console.status(f"Publishing {file.name} for {outlet}…"):
            report = asyncio.run(run())
    except PriceListRejected as exc:
        table = Table("line", "field", "problem", title=f"{file.name}: nothing was applied")
        for error in exc.errors or []:
            loc = error["loc"]
            table.add_row(
                str(loc[1]) if len(loc) > 1 else "", str(loc[2]) if len(loc) > 2 else "", error["msg"]
            )
        console.print(table)
        raise typer.Exit(code=1) from exc
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(code=1) from exc
    console.print(
        f"[green]{report.accepted} prices published[/] for {outlet}: {report.created} new, "
        f"{report.changed} changed, {report.unchanged} unchanged."
    )
