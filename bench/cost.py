"""`python -m bench.cost [SCENARIO ...]`: what one request costs the app, whatever else runs.

Throughput on a shared two-core machine moves with the neighbours; the CPU time an app spends
per request moves much less. This sends requests one after another through the real app in this
process (httpx over ASGI, no sockets) on the seeded bench database, and beside it through the
limit app of `bench/minimal` (same SQL, no framework), in alternating rounds. It prints, per
scenario, the best round's CPU time per request of each (this process's CPU time, minus what an
empty `/healthz` costs the same way: the transport), their ratio, and the system's database round
trips per request (statements counted by asyncpg's query log, plus BEGIN and COMMIT, over a batch
of its own: the log costs each statement CPU the limit app would not pay). The best of
several rounds drops the time stolen by neighbours; use it to compare two versions of the code.
`make bench` measures throughput.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import event

from bench import project
from bench.loadgen import Request
from bench.pg import Cluster
from bench.scenarios import Builder, Tokens, draw_pools
from bench.seed import DATABASE, Registry

ROOT = Path(__file__).resolve().parents[1] / "var" / "bench"
SCENARIOS = ("lookup", "lookup-qr", "dispense", "submit", "search", "search-typo", "search-browse", "product")
LIMITED = ("lookup", "lookup-qr", "dispense", "submit")
# Requests of each scenario sent once more, untimed, to count the system's round trips.
COUNTED = 20
HEALTH = Request("GET", project.READY_PATH.replace("readyz", "healthz"))
cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@dataclass
class Target:
    """One app under measurement, with a counter of its database round trips.

    The counter is asyncpg's query log, which costs each statement some CPU of its own: it is on
    only while `counting` (an untimed batch), never during the timed rounds.
    """

    client: httpx.AsyncClient
    trips: list[int]
    profile: cProfile.Profile | None = None
    connections: list[Any] = field(default_factory=list)
    tally: Any = None

    def counting(self, on: bool) -> None:
        for connection in self.connections:
            (connection.add_query_logger if on else connection.remove_query_logger)(self.tally)

    async def cost(self, requests: list[Request], tokens: list[str]) -> tuple[float, float, int]:
        """(CPU µs, round trips, answers not 2xx) per request over `requests`, sent one by one."""
        failures = 0
        self.trips[0] = 0
        if self.profile is not None:
            self.profile.enable()
        start = time.process_time()
        for request in requests:
            headers = {"Authorization": f"Bearer {tokens[request.token - 1]}"} if request.token else {}
            if request.idempotent:
                headers["Idempotency-Key"] = f"cost-{random.getrandbits(64):016x}"
            if request.body:
                headers["Content-Type"] = "application/json"
            answer = await self.client.request(
                request.method, request.path, content=request.body or None, headers=headers
            )
            failures += not 200 <= answer.status_code < 300
        spent = time.process_time() - start
        if self.profile is not None:
            self.profile.disable()
        # The query log reports each statement in a callback of its own: let the last ones run.
        for _ in range(3):
            await asyncio.sleep(0)
        return spent / len(requests) * 1e6, self.trips[0] / len(requests), failures


@dataclass
class Row:
    scenario: str
    cpu_us: float
    round_trips: float
    failures: int
    limit_cpu_us: float | None


@asynccontextmanager
async def _system(url: str, registry: Registry) -> AsyncIterator[Target]:
    settings = project.settings_for(
        url.replace("postgresql://", "postgresql+asyncpg://"), registry.signing_key, ROOT / "data"
    )
    runtime, app = project.app_for(settings)
    trips = [0]

    def tally(*_args: Any) -> None:
        trips[0] += 1

    connections: list[Any] = []

    def watch(dbapi_connection: Any, _record: Any) -> None:
        # asyncpg's own query log sees what kit.prepared sends straight to the driver, and BEGIN
        # and COMMIT (the adapter sends them as statements).
        connections.append(dbapi_connection.driver_connection)

    event.listen(runtime.database.engine.sync_engine, "connect", watch)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
            yield Target(client, trips, connections=connections, tally=tally)
    finally:
        await runtime.database.dispose()


@asynccontextmanager
async def _limit(url: str, registry: Registry) -> AsyncIterator[Target]:
    os.environ[project.ENV_DATABASE_URL] = url
    os.environ[project.ENV_SIGNING_KEY] = json.dumps(registry.signing_key)
    os.environ[project.ENV_IDENTITY_KEY] = project.identity_key(ROOT / "data")  # as the system has
    from bench.minimal import app as minimal

    async with minimal.app.router.lifespan_context(minimal.app):
        transport = httpx.ASGITransport(app=minimal.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
            yield Target(client, [0])


async def _tokens(target: Target, registry: Registry) -> Tokens:
    async def token(path: str, client_id: str) -> str:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": registry.secret}
        return str((await target.client.post(path, data=form)).json()["access_token"])

    pharmacies = [await token(project.PHARMACY_TOKEN_PATH, c) for c in registry.pharmacies[:4]]
    facilities: dict[str, str] = {}
    for prescriber in registry.prescribers:
        code = prescriber["facilities"][0]
        if code not in facilities and len(facilities) < 4:
            facilities[code] = await token(project.FACILITY_TOKEN_PATH, code)
    return Tokens(pharmacies, facilities)


async def _run(
    names: list[str], per_round: int, rounds: int, limit: bool, profile: cProfile.Profile | None = None
) -> list[Row]:
    cluster = Cluster(ROOT / "pg")
    cluster.start()
    registry = Registry.load(ROOT / "registry.json")
    url = cluster.url(DATABASE)
    conn = await asyncpg.connect(url)
    try:
        pools = await draw_pools(conn, registry, per_round * rounds * 2 + 100, random.randrange(1000))
    finally:
        await conn.close()
    rows: list[Row] = []
    async with _system(url, registry) as system:
        tokens = await _tokens(system, registry)
        builder = Builder(registry, tokens, pools)
        all_tokens = tokens.all()
        async with _limit(url, registry) if limit else _no_limit() as limit_app:
            targets = [system] + ([limit_app] if limit_app is not None else [])

            async def best(make: list[Request]) -> list[tuple[float, float, int]]:
                """The best round of each target (lowest CPU), rounds alternating between them."""
                found: list[tuple[float, float, int] | None] = [None] * len(targets)
                for _ in range(rounds):
                    for index, target in enumerate(targets):
                        batch = [make.pop() for _ in range(per_round)]
                        measured = await target.cost(batch, all_tokens)
                        current = found[index]
                        if current is None or measured[0] < current[0]:
                            found[index] = (
                                measured[0],
                                measured[1],
                                (current[2] if current else 0) + measured[2],
                            )
                        elif current is not None:
                            found[index] = (current[0], current[1], current[2] + measured[2])
                return [f for f in found if f is not None]

            for target in targets:  # warm both: connections, compiled statements, caches
                await target.cost([HEALTH] * 50, all_tokens)
            transport = await best([HEALTH] * (per_round * rounds * len(targets)))
            rows.append(
                Row("(transport: /healthz)", transport[0][0], 0.0, 0, transport[-1][0] if limit_app else None)
            )
            system.profile = profile  # the scenarios only, not the transport's rounds
            for name in names:
                requests = builder.build(name, per_round * rounds * len(targets) + 40 + COUNTED)
                counted = [requests.pop() for _ in range(COUNTED)]
                for target in targets:
                    await target.cost([requests.pop() for _ in range(20)], all_tokens)
                measured = await best(requests)
                trips, failed = await _round_trips(system, counted, all_tokens)
                limit_cpu = measured[1][0] - transport[1][0] if limit_app and name in LIMITED else None
                rows.append(
                    Row(name, measured[0][0] - transport[0][0], trips, measured[0][2] + failed, limit_cpu)
                )
    return rows


async def _round_trips(system: Target, requests: list[Request], tokens: list[str]) -> tuple[float, int]:
    """(round trips per request, answers not 2xx) over an untimed batch (the query log costs CPU itself)."""
    profile, system.profile = system.profile, None
    system.counting(True)
    try:
        _, trips, failures = await system.cost(requests, tokens)
        return trips, failures
    finally:
        system.counting(False)
        system.profile = profile


@asynccontextmanager
async def _no_limit() -> AsyncIterator[None]:
    yield None


@cli.command()
def main(
    names: Annotated[
        list[str] | None, typer.Argument(help=f"Scenarios (default: {', '.join(SCENARIOS)})")
    ] = None,
    requests: Annotated[int, typer.Option(help="Requests per round and app")] = 100,
    rounds: Annotated[int, typer.Option(help="Rounds; the best one counts")] = 5,
    limit: Annotated[bool, typer.Option(help="Also measure the limit app (bench/minimal)")] = True,
    profile: Annotated[
        int, typer.Option(help="Profile the system's requests (cProfile) and print this many functions")
    ] = 0,
    dump: Annotated[
        Path | None, typer.Option(help="With --profile, also save the raw profile here (pstats format)")
    ] = None,
) -> None:
    """Print the app's CPU time and database round trips per request, beside the limit app's."""
    profiler = cProfile.Profile() if profile else None
    rows = asyncio.run(_run(list(names or SCENARIOS), requests, rounds, limit, profiler))
    if profiler is not None:
        # Profiled figures are inflated by the profiler itself: read them for shares, not totals.
        if dump is not None:
            profiler.dump_stats(dump)
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(profile)
        stats.sort_stats("cumulative").print_stats(profile)
    table = Table(
        "scenario", "system CPU µs", "round trips", "not 2xx", "limit CPU µs", "limit / system",
        title=f"erx: cost of one request (best of {rounds} rounds of {requests})",
    )  # fmt: skip
    for row in rows:
        known = row.limit_cpu_us is not None and row.scenario in LIMITED
        table.add_row(
            row.scenario,
            f"{row.cpu_us:,.0f}",
            f"{row.round_trips:.1f}",
            str(row.failures),
            f"{row.limit_cpu_us:,.0f}" if known and row.limit_cpu_us is not None else "",
            f"{row.limit_cpu_us / row.cpu_us:.2f}" if known and row.limit_cpu_us and row.cpu_us > 0 else "",
        )
    Console().print(table)
    print(
        json.dumps(
            {r.scenario: {"cpu_us": round(r.cpu_us), "round_trips": round(r.round_trips, 1)} for r in rows}
        )
    )


if __name__ == "__main__":
    cli()
