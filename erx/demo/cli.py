"""`erx demo ...`: try every flow without writing code."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import httpx
import typer
from rich.panel import Panel
from rich.table import Table

from eprescribe.prescriptions.qr import terminal
from erx.app import create_app
from erx.demo.data import credentials_path, demo_prescription, load_demo
from erx.demo.prices import seed_prices as generate
from kit.cli import console, environment, progress_bar, run_with_runtime
from kit.runtime import Runtime

demo_app = typer.Typer(help="Demo data and walk-throughs.", no_args_is_help=True)


@demo_app.command("load")
def load(ctx: typer.Context) -> None:
    """Load demo data once and write demo-credentials.json into the data directory."""
    console.print(f"[green]Demo credentials:[/] {run_with_runtime(ctx, load_demo)}")


async def _prescribe(client: httpx.AsyncClient, credentials: dict[str, Any], kind: str) -> dict[str, Any]:
    demo = demo_prescription(credentials, kind)
    facility = next(f for f in credentials["facilities"] if f["facility_code"] == demo.facility_code)
    token = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": facility["facility_code"],
            "client_secret": facility["client_secret"],
        },
    )
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    created = await client.post("/api/v1/prescriptions", json={"jws": demo.jws}, headers=headers)
    if created.status_code != 201:
        console.print(
            Panel(
                json.dumps(created.json(), ensure_ascii=False, indent=2),
                title=f"Refused ({created.status_code})",
            )
        )
        raise typer.Exit(code=1)
    code = created.json()["code"]
    record = await client.get(f"/api/v1/prescriptions/{code}", headers=headers)
    record.raise_for_status()
    result: dict[str, Any] = record.json()
    return result


@demo_app.command("prescribe")
def prescribe(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(help="A running `erx serve`; when nothing answers, the app runs in-process")
    ] = "http://127.0.0.1:8000",
    kind: Annotated[str, typer.Option(help="c, h or n")] = "c",
) -> None:
    """Sign and submit a realistic prescription as a demo prescriber; show code, status and QR."""
    path = credentials_path(environment(ctx).settings)

    async def remote() -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await client.get("/healthz")
                if not path.exists():
                    console.print(f"[red]{path} is missing: start the server with --demo first[/]")
                    raise typer.Exit(code=1)
                return await _prescribe(client, json.loads(path.read_text()), kind)
        except httpx.ConnectError:
            console.print(f"[yellow]Nothing answers at {url}; running the app in-process.[/]")
            return None

    async def in_process(runtime: Runtime) -> dict[str, Any]:
        app = create_app(runtime=runtime)
        await load_demo(runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://erx.local") as client:
            return await _prescribe(client, json.loads(path.read_text()), kind)

    record = asyncio.run(remote()) or run_with_runtime(ctx, in_process)
    table = Table("line", "drug", "quantity", "days", "remaining", title=f"Đơn thuốc {record['code']}")
    for item in record["items"]:
        table.add_row(
            str(item["line_no"]),
            f"{item['active_ingredient']} {item['strength']} ({item['dosage_form']})",
            f"{item['quantity']} {item['unit']}",
            str(item["days_supply"]),
            str(item["remaining"]),
        )
    console.print(
        Panel.fit(
            f"[bold]Code:[/] {record['code']}\n[bold]Status:[/] {record['status']}\n"
            f"[bold]Valid until:[/] {record['valid_until']}\n[bold]Patient:[/] {record['patient']['full_name']}\n"
            f"[bold]Prescriber:[/] {record['prescriber_name']}",
            title="Prescription accepted",
        )
    )
    console.print(table)
    # Printed raw: Rich would fold the QR's lines at the terminal width and break it.
    sys.stdout.write(terminal(record["qr_text"]))
    console.print(f"QR text ({len(record['qr_text'])} characters): {record['qr_text'][:40]}…")


@demo_app.command("seed-prices")
def seed_prices(
    ctx: typer.Context,
    outlets: Annotated[int, typer.Option(min=1, help="Synthetic outlets to list prices at")] = 200,
    rows: Annotated[int, typer.Option(min=1, help="Price listings to generate in all")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed (the same seed gives the same data)")] = 20261124,
) -> None:
    """Generate realistic price listings with history for the public portal."""
    progress = progress_bar("Seeding")
    tasks: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage.capitalize(), total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        result = run_with_runtime(
            ctx, lambda runtime: generate(runtime, outlets=outlets, rows=rows, seed=seed, progress=report)
        )
    console.print(
        f"[green]{result.listings:,} listings[/] and {result.history:,} history entries at "
        f"{result.outlets:,} outlets ({result.outlets_created:,} new)."
    )
