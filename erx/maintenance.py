"""`erx maintenance`: the housekeeping job operators schedule (hourly in Kubernetes)."""

from __future__ import annotations

import typer
from rich.table import Table

from kit import maintenance
from kit.cli import console, environment, run_with_runtime
from kit.runtime import Runtime

maintenance_app = typer.Typer(help="Housekeeping of the database.", no_args_is_help=True)


@maintenance_app.command("purge")
def purge(ctx: typer.Context) -> None:
    """Delete idempotency records past retention, stale throttle counters and expired sessions.

    The access log is kept: it is the patient's record of who looked.
    """

    async def work(runtime: Runtime) -> dict[str, int]:
        return await maintenance.purge(runtime)

    counts = run_with_runtime(ctx, work)
    table = Table(title="Purged")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    hours = environment(ctx).settings.idempotency_retention_hours
    console.print(
        f"Kept: the access log (never purged), idempotency records of the last {hours} hours, "
        "live sessions and counters."
    )
