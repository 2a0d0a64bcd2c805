"""`python -m bench [SCENARIO ...]`: run benchmark scenarios on PostgreSQL and print a table."""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import bench
from bench.harness import BenchOptions, Row, start_postgres, start_server, stop_server

console = Console(width=140)
cli = typer.Typer(add_completion=False)


def discover() -> dict[str, object]:
    scenarios: dict[str, object] = {}
    for module in pkgutil.iter_modules(bench.__path__):
        if module.name in {"harness", "__main__"}:
            continue
        mod = importlib.import_module(f"bench.{module.name}")
        scenarios.update(getattr(mod, "SCENARIOS", {}))
    return scenarios


@cli.command()
def main(
    names: Annotated[list[str] | None, typer.Argument(help="Scenarios to run (default: all)")] = None,
    requests: Annotated[int, typer.Option(help="Requests per scenario")] = 2000,
    concurrency: Annotated[int, typer.Option(help="Concurrent clients")] = 32,
    price_rows: Annotated[int, typer.Option(help="Price rows for the search scenario")] = 1_000_000,
    workers: Annotated[int, typer.Option(help="Server worker processes")] = 2,
) -> None:
    """Run the scenarios against a throwaway PostgreSQL and the real server."""
    available = discover()
    chosen = names or sorted(available)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise typer.BadParameter(f"unknown scenarios {unknown}; available: {sorted(available)}")
    options = BenchOptions(requests=requests, concurrency=concurrency, price_rows=price_rows)

    async def run() -> list[Row]:
        cluster = start_postgres()
        rows: list[Row] = []
        try:
            for name in chosen:
                server = await start_server(cluster, workers=workers)
                try:
                    console.print(f"[bold]{name}[/] …")
                    rows += await available[name](server, options)  # type: ignore[operator]
                finally:
                    await stop_server(server)
        finally:
            cluster.stop()
        return rows

    rows = asyncio.run(run())
    table = Table(title=f"erx benchmarks (PostgreSQL, {workers} server workers, 2-core machine)")
    for column in ("scenario", "requests", "conc.", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "note"):
        table.add_column(column, justify="right" if column not in ("scenario", "note") else "left")
    for r in rows:
        table.add_row(
            r.scenario,
            str(r.requests),
            str(r.concurrency),
            f"{r.per_second:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.errors),
            r.note,
        )
    console.print(table)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps([asdict(r) | {"per_second": r.per_second} for r in rows], indent=2))
    console.print(f"Saved {path}")


if __name__ == "__main__":
    cli()
