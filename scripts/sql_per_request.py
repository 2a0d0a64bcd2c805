"""Print the SQL statements the system sends for one lookup, one dispense and one submission.

`python scripts/sql_per_request.py` starts a throwaway PostgreSQL, loads the demo, sends one request
of each kind through the real app and prints every statement (and BEGIN/COMMIT) the database got,
numbered: the round trips each request costs (`--full`: whole statements, not their first 160
characters). bench/minimal/sql.py mirrors what it prints.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from erx.app import create_app
from erx.demo.data import demo_prescription, load_demo
from erx.migrate import upgrade_async
from kit.runtime import Runtime
from kit.settings import Settings
from tests.pg import start_cluster

FULL = "--full" in sys.argv


async def main() -> None:
    cluster = start_cluster()
    try:
        await cluster.execute("CREATE DATABASE sql_per_request")
        settings = Settings.model_validate(
            {
                "environment": "test",
                "data_dir": Path(tempfile.mkdtemp()),
                "DATABASE_URL": cluster.url("sql_per_request"),
                "argon2_time_cost": 1,
                "argon2_memory_cost_kib": 1024,
            }
        )
        await upgrade_async(settings)
        runtime = Runtime.build(settings)
        seen: list[str] = []

        def _statement(record: Any) -> None:
            statement = " ".join(str(record.query).split())
            seen.append(statement if FULL else statement[:160])

        @event.listens_for(runtime.database.engine.sync_engine, "connect")
        def _watch(dbapi_connection: Any, _record: Any) -> None:
            # asyncpg's query log sees every statement, whichever path sent it: SQLAlchemy's, or
            # kit.prepared's straight to the driver (which SQLAlchemy's cursor events never see).
            dbapi_connection.driver_connection.add_query_logger(_statement)

        async def measured(name: str, call: Any) -> httpx.Response:
            # asyncpg calls its query loggers soon after, not during, each statement: let them run.
            for _ in range(5):
                await asyncio.sleep(0)
            seen.clear()
            answer: httpx.Response = await call()
            for _ in range(5):
                await asyncio.sleep(0)
            print(f"== {name}: {answer.status_code}, {len(seen)} round trips")
            for number, statement in enumerate(seen, 1):
                print(f"{number:3} {statement}")
            return answer

        app = create_app(runtime=runtime)
        credentials = json.loads((await load_demo(runtime)).read_text())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://erx.local"
        ) as client:
            facility = credentials["facilities"][0]
            pharmacy = next(p for p in credentials["pharmacies"] if p["controlled_licence"])

            async def token(path: str, client_id: str, secret: str) -> dict[str, str]:
                form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
                answer = await client.post(path, data=form)
                return {"Authorization": f"Bearer {answer.json()['access_token']}"}

            facility_headers = await token(
                "/api/v1/auth/token", facility["facility_code"], facility["client_secret"]
            )
            pharmacy_headers = await token(
                "/gateway/v1/auth/token", pharmacy["connection_code"], pharmacy["client_secret"]
            )
            requests: list[tuple[str, Any]] = []
            # Signed payloads differ by their issue time (whole seconds): one a minute apart each.
            moments = (datetime.now(UTC) - timedelta(minutes=n) for n in itertools.count())
            requests.append(
                (
                    "submit",
                    lambda: client.post(
                        "/api/v1/prescriptions",
                        json={"jws": demo_prescription(credentials, "c", now=next(moments)).jws},
                        headers={**facility_headers, "Idempotency-Key": secrets.token_hex(8)},
                    ),
                )
            )
            for name, call in requests:
                await call()  # warm: a new connection's first statements add asyncpg's type queries
                answer = await measured(name, call)
                code = answer.json()["code"]
            line = (await client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy_headers)).json()[
                "items"
            ][0]
            for name, call in (
                ("lookup", lambda: client.get(f"/gateway/v1/prescriptions/{code}", headers=pharmacy_headers)),
                (
                    "dispense",
                    lambda: client.post(
                        f"/gateway/v1/prescriptions/{code}/dispenses",
                        json={
                            "pharmacist": {"full_name": "DS. A", "license_no": "012345/HNO"},
                            "items": [
                                {
                                    "line_no": 1,
                                    "registration_no": line["substitutes"][0]["registration_no"],
                                    "quantity": 1,
                                }
                            ],
                        },
                        headers={**pharmacy_headers, "Idempotency-Key": secrets.token_hex(8)},
                    ),
                ),
            ):
                await call()  # warm, as above (a dispense of one unit of a line of several)
                await measured(name, call)
        await runtime.database.dispose()
    finally:
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
