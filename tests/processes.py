"""A migrated PostgreSQL database and the environment every server process of one deployment shares.

The crash and topology tests start real server processes; they all need the same signing key,
the same identity-number key (or each would write what the others cannot read), cheap password
hashing and no throttle delay.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from joserfc.jwk import ECKey

from eprescribe.registry import service as registry
from erx.migrate import upgrade_async
from kit.pii import PiiKeys
from kit.runtime import Runtime
from tests.conftest import ADMIN_ID, ADMIN_SECRET, make_settings


async def deployment_environment(root: Path, database_url: str, **extra: str) -> dict[str, str]:
    """Migrate `database_url`, add the tests' admin client, and return the processes' environment."""
    key = ECKey.generate_key("P-256", private=True)
    signing_key = json.dumps({**key.as_dict(private=True), "kid": key.thumbprint()[:16]})
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
