"""`erx pii ...`: the keys that encrypt identity numbers at rest."""

from __future__ import annotations

from typing import Annotated

import typer

from eprescribe.prescriptions import identity
from kit import pii
from kit.cli import console, environment, progress_bar, run_with_runtime
from kit.runtime import Runtime

pii_app = typer.Typer(help="Encryption of citizen IDs and insurance numbers at rest.", no_args_is_help=True)


async def reencrypt_all(runtime: Runtime, *, batch_size: int, show_progress: bool = True) -> tuple[int, int]:
    """Re-encrypt every value not under the active key, batch by batch; (rows, rewritten)."""
    async with runtime.database.sessionmaker() as session:
        total = await identity.count(session)
    scanned = rewritten = 0
    after: int | None = 0
    with progress_bar("Re-encrypting", enabled=show_progress) as progress:
        task = progress.add_task("prescriptions", total=total)
        while after is not None:
            async with runtime.database.sessionmaker() as session, session.begin():
                batch = await identity.reencrypt(session, after_id=after, limit=batch_size)
            scanned += batch.scanned
            rewritten += batch.rewritten
            after = batch.last_id
            progress.update(task, completed=min(scanned, total), total=max(total, scanned))
    return scanned, rewritten


@pii_app.command("rotate")
def rotate(
    ctx: typer.Context,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key/--reencrypt-only",
            help="Add a fresh key to the data directory's key file first (not with ERX_IDENTITY_KEY).",
        ),
    ] = True,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
) -> None:
    """Make a new key the active one, then re-encrypt every stored value under it.

    With ERX_IDENTITY_KEY the operator adds the key and makes it active there (keeping the old one),
    restarts the services, and runs `erx pii rotate --reencrypt-only`; an old key may be removed
    once this has finished.
    """
    settings = environment(ctx).settings
    if new_key:
        if settings.identity_key is not None:
            console.print(
                "[red]Keys come from ERX_IDENTITY_KEY: add a key and make it active there, "
                "then run `erx pii rotate --reencrypt-only`.[/]"
            )
            raise typer.Exit(code=1)
        keys = pii.PiiKeys.load(settings).with_new_key()
        path = pii.replace_key_file(settings, keys)
        console.print(f"New active key [bold]{keys.active}[/] in {path}. Restart the services to use it.")

    async def work(runtime: Runtime) -> tuple[int, int]:
        return await reencrypt_all(runtime, batch_size=batch_size)

    scanned, rewritten = run_with_runtime(ctx, work)
    active = pii.PiiKeys.load(settings).active
    console.print(f"{scanned:,} prescriptions looked at, {rewritten:,} re-encrypted under key {active}.")
