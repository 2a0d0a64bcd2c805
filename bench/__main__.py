"""`python -m bench`: the system under production-like load on PostgreSQL, beside its limit.

1. a PostgreSQL cluster of its own under var/bench/pg (synchronous_commit=on), seeded once with
   200,000 prescriptions and 1,000,000 price rows and reused between runs (bench/seed/);
2. the system as production runs it: `erx.app:create_app` under uvicorn or granian, one worker per
   core, uvloop, httptools (bench/servers.py);
3. wrk with Lua (bench/wrk/requests.lua) replaying requests built beforehand: signed bodies and
   idempotency keys used once (bench/scenarios.py), bounded in time;
4. for submit, lookup and dispense, the same SQL run by a bare Starlette + asyncpg app
   (bench/minimal), so the table shows the system's throughput as a share of that limit.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import asyncpg
import httpx
import typer
from rich.console import Console

from bench import loadgen, machine, project, servers
from bench.pg import Cluster
from bench.report import Report, Row
from bench.scenarios import MIX, SCENARIOS, UNIQUE, Builder, Pools, Tokens, draw_pools
from bench.seed import DATABASE, Registry, SeedPlan, ensure

ROOT = Path("var/bench").resolve()
RESULTS = Path("bench/results")
LIMIT_APP = "bench.minimal.app:app"
# The server production runs (deploy/, `erx serve`). On a quiet machine granian served the
# system faster (README "Second pass": 730 against 553 lookups/s); on a shared one uvicorn led.
DEFAULT_SERVER = "uvicorn"
# Upper bounds of the rate, to build enough once-only requests (signed payloads, dispenses).
SYSTEM_RATE_CAP = 800
LIMIT_RATE_CAP = 3000
# Before each measured run, wait (up to --quiet-wait s) until other programs use less than this
# share (%) of the two cores: the machine is shared, and they show in the `other CPU %` column.
QUIET_THRESHOLD = 15.0
PHARMACY_TOKENS = 16
FACILITY_TOKENS = 8

console = Console(width=180)
cli = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


def _env(cluster: Cluster, registry: Registry, data_dir: Path = ROOT / "data") -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return servers.server_env(
        {
            project.ENV_DATABASE_URL: cluster.url(DATABASE).replace("postgresql://", "postgresql+asyncpg://"),
            project.ENV_ENVIRONMENT: "production",
            project.ENV_SIGNING_KEY: json.dumps(registry.signing_key),
            # The keys the seed encrypted identity numbers under; every server process shares them.
            project.ENV_IDENTITY_KEY: project.identity_key(data_dir),
            project.ENV_DATA_DIR: str(data_dir),
            project.ENV_TOKEN_TTL: str(7 * 86400),
            # The bench measures capacity: shedding (kit/shedding.py) must not cut the load.
            "ERX_MAX_CONCURRENT_REQUESTS": "1000000",
            "ERX_CLIENT_QUOTA_PER_SECOND": "1000000000",
            "ERX_CLIENT_QUOTA_BURST": "1000000000",
        }
    )


def _setting(given: str) -> tuple[str, str]:
    name, sep, value = given.partition("=")
    if not sep or not name.startswith("ERX_"):
        raise typer.BadParameter(f"{given!r}: expected ERX_NAME=VALUE", param_hint="--set")
    return name, value


def _server(kind: str, target: str, name: str, env: dict[str, str], workers: int) -> servers.Server:
    port = servers.free_port()
    return servers.Server(
        name,
        servers.command(kind, target, port, workers, factory=target == project.APP_FACTORY),
        env,
        port,
        ROOT / f"{name}.log",
    )


def _tokens(base_url: str, registry: Registry) -> Tokens:
    with httpx.Client(base_url=base_url, timeout=30) as client:

        def token(path: str, client_id: str) -> str:
            form = {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": registry.secret,
            }
            r = client.post(path, data=form)
            if r.status_code != 200:
                raise RuntimeError(f"token for {client_id}: {r.status_code} {r.text[:200]}")
            return str(r.json()["access_token"])

        pharmacies = [token(project.PHARMACY_TOKEN_PATH, c) for c in registry.pharmacies[:PHARMACY_TOKENS]]
        facilities: dict[str, str] = {}
        for prescriber in registry.prescribers:
            code = prescriber["facilities"][0]
            if code not in facilities and len(facilities) < FACILITY_TOKENS:
                facilities[code] = token(project.FACILITY_TOKEN_PATH, code)
    return Tokens(pharmacies, facilities)


class Run:
    """One bench run: options, the request builder and the wrk settings."""

    def __init__(
        self,
        builder: Builder,
        tokens_file: Path,
        threads: int,
        connections: int,
        duration: float,
        warmup: float,
        roots: list[int],
        quiet_wait: float,
    ) -> None:
        self.roots = roots
        self.quiet_wait = quiet_wait
        self.builder = builder
        self.tokens_file = tokens_file
        self.threads = threads
        self.connections = connections
        self.duration = duration
        self.warmup = warmup
        self.folder = ROOT / "requests"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _count(self, scenario: str, seconds: float, cap: int) -> int:
        if scenario in UNIQUE or scenario == "mixed":
            return int(cap * seconds) + 200
        return 20000

    def _file(self, scenario: str, label: str, seconds: float, cap: int) -> Path:
        path = self.folder / f"{scenario}-{label}.tsv"
        loadgen.write_requests(path, self.builder.build(scenario, self._count(scenario, seconds, cap)))
        return path

    def load(self, server: servers.Server, requests_file: Path, seconds: float) -> loadgen.WrkResult:
        return loadgen.run(
            server.url,
            requests_file,
            self.tokens_file,
            threads=self.threads,
            connections=self.connections,
            duration=seconds,
        )

    def measure(
        self, server: servers.Server, scenario: str, cap: int, *, profile: bool = False
    ) -> tuple[loadgen.WrkResult, int, float]:
        """Warm up, then load for `duration` seconds while sampling RSS (and py-spy, if asked).

        Returns wrk's result, the peak RSS of the server and the CPU share other programs took.
        """
        main = self._file(scenario, server.name, self.duration, cap)
        if self.quiet_wait > 0:
            machine.wait_for_quiet(self.roots, threshold=QUIET_THRESHOLD, patience=self.quiet_wait)
        ticks = {pid: servers.cpu_ticks(pid) for pid in server.worker_pids()}
        if self.warmup > 0:
            self.load(server, self._file(scenario, f"{server.name}-warmup", self.warmup, cap), self.warmup)
        spy: subprocess.Popen[bytes] | None = None
        out = RESULTS / f"profile-{scenario}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
        if profile:
            RESULTS.mkdir(parents=True, exist_ok=True)
            # The worker that worked during the warm-up (not a helper process of the server).
            worker = max(ticks, key=lambda pid: servers.cpu_ticks(pid) - ticks[pid])
            console.print(f"  py-spy on worker {worker} → {out}")
            spy = _profile(worker, self.duration - 1, out)
        other = machine.OtherLoad(self.roots).start()
        with server.sampler() as sampler:
            result = self.load(server, main, self.duration)
        other.stop()
        if spy is not None:
            spy.wait(timeout=120)
            if out.exists():
                summary = summarise_profile(out)
                out.with_suffix(".summary.txt").write_text("\n".join(summary) + "\n")
                console.print("\n".join("    " + line for line in summary))
        if result.wrapped and scenario in UNIQUE | {"mixed"}:
            console.print(f"[yellow]{scenario}: the once-only requests ran out ({result.wrapped} reused)[/]")
        return result, sampler.peak, other.share


def _describe(result: loadgen.WrkResult) -> str:
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.statuses.items()))
    extra = f"; sample error: {result.samples[0][:160]}" if result.errors and result.samples else ""
    return f"{result.requests:,} requests ({statuses}){extra}"


def _profile(worker: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(worker),
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            "raw",
            "--rate",
            "100",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


PROJECT_PACKAGES = ("erx", "eprescribe", "pharmacy_gateway", "price_portal")
# Leaves where a thread waits rather than works (idle thread pools, uvicorn's supervisor pipe).
IDLE_LEAVES = (
    "Condition.wait",
    "Queue.get",
    "Event.wait",
    "Connection._recv",
    "Connection.poll",
    "_worker (concurrent",
    "QueueListener.dequeue",  # the log thread blocked on its queue
)
LOOP_LEAF = "Runner.run"


def _frame(text: str) -> tuple[str, str]:
    """`handle (pharmacy_gateway/service.py:123)` -> (`handle (pharmacy_gateway/service.py)`, package)."""
    name, _, where = text.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    package = where.split("/", 1)[0] if "/" in where else where.removesuffix(".py")
    return (f"{name} ({where})" if where else name), package


def summarise_profile(path: Path, top: int = 20) -> list[str]:
    """Where one worker's CPU went, from py-spy's collapsed stacks (`--format raw`).

    Samples of waiting threads are left out. A sample whose innermost Python frame is the event
    loop's `Runner.run` is time inside uvloop's C code: socket I/O and parsing, or idle.
    """
    own: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames or frames[-1][0].startswith(IDLE_LEAVES):
            continue
        count = int(count_text)
        total += count
        leaf, package = frames[-1]
        if leaf.startswith(LOOP_LEAF):
            leaf, package = "(uvloop C code: I/O, or idle)", "uvloop"
        own[leaf] += count
        packages[package] += count
        for frame, frame_package in set(frames):
            if frame_package in PROJECT_PACKAGES:
                inclusive[frame] += count
    if not total:
        return ["no samples"]
    lines = [f"{total:,} samples of working threads; self time by package:"]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in packages.most_common(12)]
    lines.append("self time by function:")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in own.most_common(top)]
    lines.append("inclusive time of the project's functions:")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in inclusive.most_common(top)]
    return lines


async def _prepare(cluster: Cluster, plan: SeedPlan, reseed: bool, targets: int) -> tuple[Registry, Pools]:
    registry = await ensure(
        cluster.url("postgres"), cluster.url, plan, ROOT / "registry.json", console, reseed=reseed
    )
    conn = await asyncpg.connect(cluster.url(DATABASE))
    try:
        # A running service has its working set in memory: load every table and index into
        # shared_buffers (the seeded database fits in them), so the first scenario is not colder.
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        await conn.fetchval(
            "SELECT sum(pg_prewarm(oid)) FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'i', 't')"
        )
        pools = await draw_pools(conn, registry, targets, int(time.time()))
    finally:
        await conn.close()
    return registry, pools


@cli.command()
def main(
    scenarios: Annotated[
        list[str] | None, typer.Argument(help=f"Scenarios (default: all): {', '.join(SCENARIOS)}")
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds of load per scenario")] = 10.0,
    warmup: Annotated[float, typer.Option(help="Seconds of warm-up before each scenario")] = 2.0,
    threads: Annotated[int, typer.Option("--threads", "-t", help="wrk threads")] = 2,
    connections: Annotated[int, typer.Option("--connections", "-c", help="wrk connections")] = 32,
    server: Annotated[str, typer.Option(help="uvicorn or granian")] = DEFAULT_SERVER,
    workers: Annotated[int, typer.Option(help="Server worker processes (one per core)")] = 2,
    limit: Annotated[bool, typer.Option(help="Also run the limit apps (bench/minimal)")] = True,
    compare_servers: Annotated[bool, typer.Option(help="Also run lookup on the other server")] = True,
    quick: Annotated[
        bool, typer.Option(help="Smoke run: 3 s per scenario, 1 s warm-up, no comparison")
    ] = False,
    soak: Annotated[
        float, typer.Option(help="Run only `mixed` this many seconds; RSS at start and end")
    ] = 0.0,
    profile: Annotated[
        list[str] | None, typer.Option(help="py-spy one system worker during these scenarios")
    ] = None,
    prescriptions: Annotated[int, typer.Option(help="Seeded prescriptions")] = 200_000,
    price_rows: Annotated[int, typer.Option(help="Seeded price listings")] = 1_000_000,
    quiet_wait: Annotated[
        float, typer.Option(help="Wait up to this long for other programs to calm down before each run")
    ] = 20.0,
    reseed: Annotated[bool, typer.Option(help="Drop the seeded database and seed it again")] = False,
    keep_postgres: Annotated[bool, typer.Option(help="Leave the cluster running afterwards")] = False,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="An ERX_ setting for the system's server, NAME=VALUE (repeatable), e.g. ERX_DATABASE_POOL_SIZE=4",
        ),
    ] = None,
) -> None:
    """Run the scenarios against the real server on a seeded PostgreSQL and print one table."""
    if quick:
        duration, warmup, compare_servers = 3.0, 1.0, False
    chosen = list(scenarios or SCENARIOS)
    if soak:
        chosen, duration, limit, compare_servers = ["mixed"], soak, False, False
    unknown = [s for s in chosen if s not in SCENARIOS]
    overrides = dict(_setting(given) for given in setting or [])
    if unknown or server not in servers.SERVERS:
        raise typer.BadParameter(
            f"unknown {unknown or server}; scenarios: {list(SCENARIOS)}; servers: {servers.SERVERS}"
        )
    loadgen.wrk_binary()
    command = " ".join(["python -m bench", *(shlex.quote(a) for a in sys.argv[1:])])
    plan = SeedPlan(prescriptions=prescriptions, price_rows=price_rows)

    seconds = duration + warmup
    share = MIX["dispense"] / sum(MIX.values())
    targets = (
        (SYSTEM_RATE_CAP * seconds if "dispense" in chosen else 0)
        + (SYSTEM_RATE_CAP * seconds * share if "mixed" in chosen else 0)
        + (LIMIT_RATE_CAP * seconds if limit and "dispense" in chosen else 0)
    )
    cluster = Cluster(ROOT / "pg")
    console.print(f"PostgreSQL under {cluster.root} …")
    cluster.start()
    report = Report(
        title=f"erx bench: {workers} × {server} workers, PostgreSQL 15 synchronous_commit=on, wrk -t{threads} -c{connections} -d{duration:g}s, one 2-core machine",
        command=command,
        settings={
            "server": server,
            "workers": workers,
            "threads": threads,
            "connections": connections,
            "duration_s": duration,
            "warmup_s": warmup,
            "prescriptions": prescriptions,
            "price_rows": price_rows,
            **overrides,
        },
    )
    try:
        registry, pools = asyncio.run(_prepare(cluster, plan, reseed, int(targets) + 1000))
        env = _env(cluster, registry) | overrides
        system = _server(server, project.APP_FACTORY, f"system-{server}", env, workers)
        console.print(f"Starting the system: {shlex.join(system.cmd[1:])}")
        with system:
            tokens = _tokens(system.url, registry)
            tokens_file = ROOT / "tokens.txt"
            loadgen.write_tokens(tokens_file, tokens.all())
            roots = [os.getpid(), *filter(None, [machine.postmaster_pid(str(cluster.datadir))])]
            run = Run(
                Builder(registry, tokens, pools),
                tokens_file,
                threads,
                connections,
                duration,
                warmup,
                roots,
                quiet_wait,
            )
            if soak:
                _soak(run, system, report, soak)
            else:
                for scenario in chosen:
                    console.print(f"[bold]{scenario}[/] on {server} …")
                    result, peak, busy = run.measure(
                        system, scenario, SYSTEM_RATE_CAP, profile=scenario in (profile or [])
                    )
                    report.rows.append(
                        Row(scenario, server, result, peak, SCENARIOS[scenario][0], other_cpu=busy)
                    )
                    console.print(
                        f"  {result.per_second:,.0f} req/s, p99 {result.p99_ms:,.1f} ms, "
                        f"others {busy:.0f}% CPU; {_describe(result)}"
                    )
        if compare_servers and "lookup" in chosen:
            other = next(s for s in servers.SERVERS if s != server)
            console.print(f"[bold]lookup[/] on {other} (server comparison) …")
            with _server(other, project.APP_FACTORY, f"system-{other}", env, workers) as alt:
                result, peak, busy = run.measure(alt, "lookup", SYSTEM_RATE_CAP)
            report.rows.append(
                Row(
                    f"lookup ({other})",
                    other,
                    result,
                    peak,
                    f"lookup, the system under {other}",
                    other_cpu=busy,
                )
            )
            console.print(f"  {result.per_second:,.0f} req/s; {_describe(result)}")
        wanted = [s for s in chosen if SCENARIOS[s][1]]
        if limit and wanted:
            with _server(server, LIMIT_APP, f"limit-{server}", env, workers) as minimal:
                for scenario in wanted:
                    console.print(f"[bold]{scenario}[/] on the limit app …")
                    result, peak, busy = run.measure(minimal, scenario, LIMIT_RATE_CAP)
                    for row in report.rows:
                        if row.scenario == scenario:
                            row.limit, row.limit_peak_rss, row.limit_other_cpu = result, peak, busy
                    console.print(
                        f"  {result.per_second:,.0f} req/s, others {busy:.0f}% CPU; {_describe(result)}"
                    )
    finally:
        if not keep_postgres:
            cluster.stop()
    report.notes.append(
        "errors = non-2xx answers + socket errors; peak RSS = highest sum of VmRSS over the server's "
        "processes (master + workers), sampled every 0.25 s during the measured seconds"
    )
    report.notes.append(
        "other CPU % = share of the two cores used by programs other than the bench, its servers, wrk and "
        "its PostgreSQL during the measured seconds (system / limit): the machine may be shared"
    )
    report.notes.append(
        "limit = the same SQL in a bare Starlette + asyncpg app (bench/minimal); ratio = system / limit"
    )
    console.print(report.table())
    for row in report.rows:
        if row.result.errors:
            console.print(f"[red]{row.scenario}: {_describe(row.result)}[/]")
        if row.limit is not None and row.limit.errors:
            console.print(f"[red]{row.scenario} (limit): {_describe(row.limit)}[/]")
    report.save(RESULTS, console)


def _soak(run: Run, system: servers.Server, report: Report, seconds: float) -> None:
    """The mixed traffic for `seconds`: RSS after the warm-up and at the end (and every minute)."""
    if run.warmup > 0:
        run.load(system, run._file("mixed", f"{system.name}-warmup", run.warmup, SYSTEM_RATE_CAP), run.warmup)
    start = system.rss()
    console.print(f"soak: RSS at start {start / 2**20:,.1f} MiB (after {run.warmup:g} s of warm-up)")
    main_file = run._file("mixed", system.name, seconds, SYSTEM_RATE_CAP)
    other = machine.OtherLoad(run.roots).start()
    with system.sampler() as sampler:
        sampler.interval = 1.0
        result = run.load(system, main_file, seconds)
    other.stop()
    end = system.rss()
    minute = [v for t, v in sampler.samples if int(t) % 60 == 0]
    console.print("soak: RSS every minute (MiB): " + ", ".join(f"{v / 2**20:,.0f}" for v in minute))
    console.print(
        f"soak: RSS at start {start / 2**20:,.1f} MiB, at end {end / 2**20:,.1f} MiB "
        f"({(end - start) / 2**20:+,.1f} MiB), peak {sampler.peak / 2**20:,.1f} MiB over {seconds:g} s"
    )
    report.rows.append(
        Row("mixed (soak)", system.name, result, sampler.peak, SCENARIOS["mixed"][0], other_cpu=other.share)
    )
    report.notes.append(
        f"soak {seconds:g} s: RSS start {start / 2**20:,.1f} MiB, end {end / 2**20:,.1f} MiB, "
        f"peak {sampler.peak / 2**20:,.1f} MiB"
    )


if __name__ == "__main__":
    cli()
