"""`erx audit verify`, `erx backup` and `erx restore`: the record proves itself, and survives.

A backup is `pg_dump --format=custom` on PostgreSQL and SQLite's online backup API on the
embedded engine; a restore goes into an empty database (or replaces one with `--replace`)
and then verifies what it restored: every access-log chain and every prescription's signature.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from eprescribe.fhir import service as fhir
from eprescribe.national import service as national
from eprescribe.prescriptions import service as prescriptions
from kit import audit_verify
from kit.cli import console, environment, progress_bar, run_with_runtime
from kit.runtime import Runtime
from kit.settings import Settings

audit_app = typer.Typer(help="The tamper-evident access log.", no_args_is_help=True)
# Every signed form a door admits besides the contract's payload, read by that door's own mapping.
SIGNED_FORMS = (national.SIGNED_FORM, fhir.SIGNED_FORM)
SHOWN_BAD = 20


async def _verify(runtime: Runtime, *, signatures: bool, show_progress: bool) -> bool:
    """Walk every chain (and, asked, every signature); print the first break; True when all hold."""
    ok = True
    async with runtime.database.sessionmaker() as session, session.begin():
        total = await audit_verify.count_entries(session)
        with progress_bar("access log", enabled=show_progress) as progress:
            task = progress.add_task("chains", total=total)
            report = await audit_verify.verify_chains(session, lambda n: progress.advance(task, n))
        if report.broken is None:
            console.print(f"[green]ok[/] {report.entries:,} entries in {report.chains:,} chains hold")
        else:
            ok = False
            b = report.broken
            console.print(
                f"[red]broken[/] chain {b.prescription_code}, entry id {b.entry_id}, seq {b.seq}: {b.reason}",
                soft_wrap=True,
            )
        if signatures:
            with progress_bar("signatures", enabled=show_progress) as progress:
                task = progress.add_task("prescriptions", total=None)
                found = await prescriptions.check_stored_signatures(
                    session, lambda n: progress.advance(task, n), forms=SIGNED_FORMS
                )
            ok = _print_signatures(found) and ok
    return ok


def _print_signatures(found: prescriptions.StoredCheck) -> bool:
    """Name the bad signatures (the first few), the verified and the unsigned; True when none is bad."""
    for item in found.bad[:SHOWN_BAD]:
        console.print(f"[red]bad signature[/] {item.code}: {item.reason}", soft_wrap=True)
    if len(found.bad) > SHOWN_BAD:
        console.print(f"[red]bad signature[/] and {len(found.bad) - SHOWN_BAD:,} more")
    if not found.bad:
        names = (prescriptions.CONTRACT_FORM, *(form.name for form in SIGNED_FORMS))
        forms = ", ".join(f"{name} {found.verified[name]:,}" for name in names if found.verified[name])
        console.print(
            f"[green]ok[/] {found.verified.total():,} prescriptions verify with their prescribers' keys"
            + (f" ({forms})" if forms else "")
        )
    if found.unsigned:
        one = found.unsigned == 1
        console.print(
            f"[yellow]unsigned[/] {found.unsigned:,} unsigned legacy prescription{'' if one else 's'}, "
            f"admitted by ERX_NATIONAL_ACCEPT_UNSIGNED, {'has' if one else 'have'} no signature to verify",
            soft_wrap=True,
        )
    return found.ok


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    signatures: Annotated[bool, typer.Option(help="Also verify every prescription's signature")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars")] = True,
) -> None:
    """Check every access-log chain; name the first broken entry (exit code 1)."""

    async def work(runtime: Runtime) -> bool:
        return await _verify(runtime, signatures=signatures, show_progress=progress)

    if not run_with_runtime(ctx, work):
        raise typer.Exit(code=1)


def _libpq_url(settings: Settings) -> str:
    """The database URL as pg_dump and pg_restore read it (no SQLAlchemy driver name)."""
    url = make_url(settings.resolved_database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        console.print(f"[red]{name} not found[/]: install the PostgreSQL client tools")
        raise typer.Exit(code=2)
    return found


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603 - our own tool and arguments
    if done.returncode != 0:
        console.print(f"[red]{Path(args[0]).name} failed[/]: {done.stderr.strip()}", soft_wrap=True)
        raise typer.Exit(code=1)


def _sqlite_file(settings: Settings) -> Path:
    database = make_url(settings.resolved_database_url).database
    assert database, "a SQLite URL names its file"
    return Path(database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy a live SQLite database page by page (consistent while others write)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def backup(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="The backup file to write")]
) -> None:
    """Write a consistent backup of the whole database to PATH."""
    settings = environment(ctx).settings
    if path.exists():
        console.print(f"[red]{path} exists[/]: a backup never overwrites a file")
        raise typer.Exit(code=2)
    if settings.is_sqlite:
        _sqlite_copy(_sqlite_file(settings), path)
    else:
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path), _libpq_url(settings)])
    console.print(f"[green]backed up[/] to {path} ({path.stat().st_size:,} bytes)")


async def _has_tables(runtime: Runtime) -> bool:
    async with runtime.database.engine.connect() as connection:
        names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    return bool(names)


def restore(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A backup written by `erx backup`")],
    replace: Annotated[bool, typer.Option(help="Replace what the target database holds")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars")] = True,
) -> None:
    """Restore PATH into the configured database, then verify the audit chains and signatures."""
    settings = environment(ctx).settings
    if not path.is_file():
        console.print(f"[red]{path} is not a file[/]")
        raise typer.Exit(code=2)
    probe = Runtime.build(settings)
    try:
        occupied = asyncio.run(_has_tables(probe))
    finally:
        asyncio.run(probe.dispose())
    if occupied and not replace:
        console.print("[red]the target database is not empty[/]: restore into a fresh one, or pass --replace")
        raise typer.Exit(code=2)
    if settings.is_sqlite:
        target = _sqlite_file(settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        _sqlite_copy(path, target)
    else:
        args = [_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction"]
        if replace:
            args += ["--clean", "--if-exists"]
        _run([*args, "--dbname", _libpq_url(settings), str(path)])
    console.print(f"[green]restored[/] {path}")

    async def work(runtime: Runtime) -> bool:
        return await _verify(runtime, signatures=True, show_progress=progress)

    if not run_with_runtime(ctx, work):
        raise typer.Exit(code=1)
