"""`erx admin ...`: health-department API clients."""

from __future__ import annotations

from typing import Annotated

import typer

from eprescribe.registry import service
from kit.cli import console, run_with_runtime
from kit.runtime import Runtime

admin_app = typer.Typer(help="Health-department API clients.", no_args_is_help=True)


@admin_app.command("create-client")
def create_admin_client(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Who uses this client")]
) -> None:
    """Create a health-department client and print its secret once."""

    async def create(runtime: Runtime) -> tuple[str, str]:
        async with runtime.database.sessionmaker() as session, session.begin():
            client, secret = await service.create_admin_client(session, runtime.hasher, name=name)
            return client.client_id, secret

    client_id, secret = run_with_runtime(ctx, create)
    console.print(f"client_id:     [bold]{client_id}[/]\nclient_secret: [bold]{secret}[/]  (shown once)")
