"""The `erx` command: serve, migrate, keys, the registry, the catalogue, prices and the demo."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import ValidationError

from eprescribe.catalogue.cli import drugs_app
from eprescribe.prescriptions.cli import pii_app
from eprescribe.registry.cli import admin_app
from erx.demo.cli import demo_app
from erx.integrity import audit_app, backup, restore
from erx.maintenance import maintenance_app
from erx.migrate import require_current_schema, upgrade
from kit.cli import CliEnvironment, console, environment
from kit.security import KeyRing
from kit.settings import get_settings
from pharmacy_gateway.prices.cli import prices_app

app = typer.Typer(help="National e-prescription and pharmacy interconnection system.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys of the national system.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(drugs_app, name="drugs")
app.add_typer(admin_app, name="admin")
app.add_typer(demo_app, name="demo")
app.add_typer(prices_app, name="prices")
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(pii_app, name="pii")
app.add_typer(audit_app, name="audit")
app.command("backup")(backup)
app.command("restore")(restore)


@app.callback()
def main(ctx: typer.Context) -> None:
    """Read the settings once for whichever command runs."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        # What is wrong, not a traceback: an operator fixes the environment and starts again.
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"erx: settings refused: {where + ': ' if where else ''}{message}", err=True)
        raise typer.Exit(2) from None
    ctx.obj = CliEnvironment(settings=settings, require_current_schema=require_current_schema)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load demo data once and write demo-credentials.json")
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only)")] = 1,
) -> None:
    """Apply pending migrations, then serve the three services on one port."""
    import uvicorn

    from erx.demo.data import load_demo_sync

    settings = environment(ctx).settings
    upgrade(settings)
    # Create the signing key here, once: workers generating their own would not verify each
    # other's tokens.
    KeyRing.load(settings)
    if demo:
        path = load_demo_sync(settings)
        console.print(f"[green]Demo data ready[/]; credentials in [bold]{path}[/]")
    console.print(f"Serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    workers = workers if not settings.is_sqlite else 1
    with metrics_directory(workers):
        uvicorn.run(
            "erx.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # The app applies ERX_TRUSTED_PROXIES itself (kit.proxy), as in every deployment; the
            # request's JSON line replaces the access log, which would show raw paths.
            proxy_headers=False,
            access_log=False,
            log_level=settings.log_level,
        )


@contextmanager
def metrics_directory(workers: int) -> Iterator[None]:
    """Give several workers one fresh PROMETHEUS_MULTIPROC_DIR, removed when they stop.

    Each worker writes its metrics there and `/metrics` adds them all up; values of an
    earlier run would be added too, so it starts empty. One worker keeps them in memory.
    """
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="erx-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(directory, ignore_errors=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply pending migrations."""
    settings = environment(ctx).settings
    upgrade(settings, revision)
    console.print(f"[green]Database at {revision}[/] ({settings.resolved_database_url.split('@')[-1]})")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Add a new signing key; older keys keep verifying until removed from the data directory."""
    settings = environment(ctx).settings
    if settings.signing_key is not None:
        console.print("[red]Keys come from ERX_SIGNING_KEY; rotate them there.[/]")
        raise typer.Exit(code=1)
    key_dir = settings.data_dir / "keys"
    key_dir.mkdir(parents=True, exist_ok=True)
    path = KeyRing.rotate(key_dir)
    console.print(f"New signing key: {path}. Restart the services to sign with it.")
