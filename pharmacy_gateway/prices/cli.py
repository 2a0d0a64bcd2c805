"""`erx prices ...`: publish an outlet's price list from a CSV file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import ClientStatus
from kit.cli import console, run_with_runtime
from kit.errors import Conflict, DomainError, NotFound
from kit.runtime import Runtime
from pharmacy_gateway.prices import service
from pharmacy_gateway.prices.exceptions import PriceListRejected
from pharmacy_gateway.prices.schemas import PublishReport

prices_app = typer.Typer(help="Listed prices of the outlets.", no_args_is_help=True)


async def import_prices(runtime: Runtime, connection_code: str, path: Path) -> PublishReport:
    """Publish a CSV price list for one outlet, all or nothing, as the gateway would."""
    text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    async with runtime.database.sessionmaker() as session, session.begin():
        pharmacy = await registry.get_pharmacy(session, connection_code)
        if pharmacy is None:
            raise NotFound(f"No outlet has the connection code {connection_code}")
        if pharmacy.status != ClientStatus.ACTIVE:
            raise Conflict(
                f"Outlet {pharmacy.connection_code} is {pharmacy.status}; it cannot publish prices"
            )
        return await service.import_price_csv(session, pharmacy, text)


@prices_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV: registration_no,price,unit"),
    ],
    outlet: Annotated[str, typer.Option("--outlet", help="The outlet's connection code")],
) -> None:
    """Replace an outlet's listed prices from a CSV file; one bad row refuses the whole file."""
    try:
        with console.status(f"Publishing {file.name} for {outlet}…"):
            report = run_with_runtime(ctx, lambda runtime: import_prices(runtime, outlet, file))
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
