"""A migrated PostgreSQL database, the environment every server process of one deployment shares,
and the wait until a started process is ready.

The crash and topology tests start real server processes; they all need the same signing key,
the same identity-number key (or each would write what the others cannot read), cheap password
hashing and no throttle delay.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from eprescribe.registry import service as registry
from erx.migrate import upgrade_async
from kit.pii import PiiKeys
from kit.runtime import Runtime
from tests.conftest import ADMIN_ID, ADMIN_SECRET, make_settings, new_signing_key


async def deployment_environment(root: Path, database_url: str, **extra: str) -> dict[str, str]:
    """Migrate `database_url`, add the tests' admin client, and return the processes' environment."""
    signing_key = new_signing_key()
    identity_key = PiiKeys.generate().to_json()
    settings = make_settings(root / "seed", database_url, signing_key=signing_key, identity_key=identity_key)
    await upgrade_async(settings)
    runtime = Runtime.build(settings)
    async with runtime.database.sessionmaker() as session, session.begin():
        await registry.create_admin_client(
            session, runtime.hasher, name="tests", client_id=ADMIN_ID, secret=ADMIN_SECRET
        )
    await runtime.dispose()
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ERX_", "PROMETHEUS_")) and k != "DATABASE_URL"
    }
    return inherited | {
        "ERX_ENVIRONMENT": "test",
        "ERX_SIGNING_KEY": signing_key,
        "ERX_IDENTITY_KEY": identity_key,
        "DATABASE_URL": database_url,
        "ERX_ARGON2_TIME_COST": "1",
        "ERX_ARGON2_MEMORY_COST_KIB": "1024",
        "ERX_THROTTLE_DELAY_SECONDS": "0",
        "ERX_DATABASE_POOL_SIZE": "4",
        **extra,
    }


def _tail(log: Path | None) -> str:
    return log.read_text()[-3000:] if log is not None and log.exists() else ""


async def until_ready(
    url: str,
    process: subprocess.Popen[bytes],
    deadline: float,
    *,
    name: str = "the server",
    log: Path | None = None,
    also: Callable[[httpx.AsyncClient], Awaitable[bool]] | None = None,
) -> None:
    """Poll `url`'s `/readyz` until it answers 200 and `also` (if given) holds.

    Fails once the process has ended or `deadline` (`time.monotonic()`) has passed, with the
    tail of its log when there is one.
    """
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200 and (also is None or await also(client)):
                    return
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not become ready\n{_tail(log)}")
            await asyncio.sleep(0.1)
