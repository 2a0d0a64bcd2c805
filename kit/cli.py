"""What every command of the `erx` CLI shares: its settings, a runtime, progress and output."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kit.runtime import Runtime
from kit.settings import Settings

T = TypeVar("T")
console = Console()


@dataclass(frozen=True)
class CliEnvironment:
    """Set by the root command: the settings, and how to check the schema is current."""

    settings: Settings
    require_current_schema: Callable[[Settings], None]


def environment(ctx: typer.Context) -> CliEnvironment:
    found = ctx.find_object(CliEnvironment)
    if found is None:  # pragma: no cover - the root command always sets it
        raise RuntimeError("run this command through the `erx` CLI")
    return found


def run_with_runtime(ctx: typer.Context, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run `work` with a runtime on a database whose schema is current; never migrate here.

    Only `erx db upgrade` and `erx serve` apply migrations: a command that finds the schema
    behind says so and stops, instead of changing the database behind the operator's back.
    """
    env = environment(ctx)
    try:
        env.require_current_schema(env.settings)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(code=2) from exc
    runtime = Runtime.build(env.settings)

    async def run() -> T:
        try:
            return await work(runtime)
        finally:
            await runtime.dispose()

    return asyncio.run(run())


def progress_bar(description: str, *, enabled: bool = True) -> Progress:
    """A progress bar for long jobs (rows imported, rows seeded)."""
    return Progress(
        TextColumn(f"[bold]{description}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )
