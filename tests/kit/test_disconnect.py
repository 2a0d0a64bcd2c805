"""A pooled connection PostgreSQL ended while it sat idle is a 503, and the pool lets it go.

PostgreSQL's last words to a connection it ends (a restart, `pg_terminate_backend`) are a FATAL
message, then the close. A client that has read the message but not yet the close holds a
connection asyncpg can no longer use (kit/prepared.py `_given_up`). A relay
between the app and PostgreSQL holds that moment open: it passes the message on and keeps the
app's side of the socket open. Each request on such a connection must answer 503 with
Retry-After, and the pool must drop it: the relay never closes it, so a pool that kept it
would answer 500 or 503 forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy import Integer, bindparam, literal, select, text
from sqlalchemy.engine import make_url

from kit.database import SessionDep
from kit.prepared import Prepared
from tests.conftest import Harness

pytestmark = pytest.mark.postgres_only

UNKNOWN = "/api/v1/prescriptions/01001AAAAAAA-c"
FIRST_STATEMENT = "/tests/first-statement"
DIVIDE = "/tests/divide"
_DIVIDE = Prepared(select((literal(1) / bindparam("d", type_=Integer)).label("n")))


class Relay:
    """A TCP relay to PostgreSQL that passes on what the server says but not that it closed."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.upstream_ports: list[int] = []
        # While set, a close by the server is not passed on (the connection is held instead).
        self.holding = False
        self.held: list[asyncio.StreamWriter] = []
        self.held_one = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        server_reader, server = await asyncio.open_connection(self.host, self.port)
        self.upstream_ports.append(int(server.get_extra_info("sockname")[1]))
        self._writers += [client, server]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, hold: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            if hold and self.holding:
                self.held.append(sink)  # the server closed: the client is not told
                self.held_one.set()
            else:
                sink.close()

        await asyncio.gather(pump(client_reader, server, hold=False), pump(server_reader, client, hold=True))

    async def close(self) -> None:
        for writer in [*self.held, *self._writers]:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def relayed(pg_harness: Harness) -> AsyncIterator[tuple[Harness, Relay]]:
    """The app on the PostgreSQL harness's database, through a relay, one pooled connection."""
    url = make_url(pg_harness.settings.resolved_database_url)
    assert url.host is not None and url.port is not None
    relay = Relay(url.host, url.port)
    port = await relay.start()
    settings = pg_harness.settings.model_copy(
        update={"database_url": url.set(host="127.0.0.1", port=port).render_as_string(False)}
    )
    harness = Harness(settings.model_copy(update={"database_pool_size": 1}))

    async def first_statement(session: SessionDep) -> dict[str, int]:
        # SQLAlchemy's own path: the request's first statement through the session.
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    harness.app.add_api_route(FIRST_STATEMENT, first_statement)
    try:
        yield harness, relay
    finally:
        # The relay first: a connection it still held would wait for its close forever.
        await relay.close()
        await harness.close()


async def _end_pooled_connection(harness: Harness, relay: Relay) -> None:
    """PostgreSQL ends the app's connection; the app reads the FATAL message but not the close."""
    url = make_url(harness.settings.resolved_database_url)
    admin = await asyncpg.connect(host=relay.host, port=relay.port, user=url.username, database=url.database)
    relay.holding = True
    try:
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE client_port = ANY($1)",
            relay.upstream_ports,
        )
    finally:
        await admin.close()
    # Requests came one at a time: the pool opened one connection.
    assert ended == 1
    await relay.held_one.wait()
    relay.holding = False  # connections opened from now on close as they should
    # The relay wrote the message to a loopback socket: it is there at the app's next read,
    # which the event loop makes within a few of its turns.
    await asyncio.sleep(0.1)


def _unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["cache-control"] == "no-store"


class TestEndedWhileIdle:
    async def test_prepared_statement_path_answers_503_and_the_pool_heals(
        self, relayed: tuple[Harness, Relay]
    ) -> None:
        harness, relay = relayed
        world = await harness.api.world()
        headers = world.facility.headers
        assert (await harness.client.get(UNKNOWN, headers=headers)).status_code == 404
        await _end_pooled_connection(harness, relay)
        _unavailable(await harness.client.get(UNKNOWN, headers=headers))
        # The relay never closes the ended connection: only a pool that dropped it answers now.
        assert (await harness.client.get(UNKNOWN, headers=headers)).status_code == 404

    async def test_sqlalchemy_path_answers_503_and_the_pool_heals(
        self, relayed: tuple[Harness, Relay]
    ) -> None:
        harness, relay = relayed
        assert (await harness.client.get(FIRST_STATEMENT)).json() == {"one": 1}
        await _end_pooled_connection(harness, relay)
        _unavailable(await harness.client.get(FIRST_STATEMENT))
        assert (await harness.client.get(FIRST_STATEMENT)).json() == {"one": 1}

    async def test_a_browser_gets_the_503_page(self, relayed: tuple[Harness, Relay]) -> None:
        harness, relay = relayed
        page = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        # A different search each time: none is answered from the portal's cache.
        assert (await harness.client.get("/search?q=paracetamol", headers=page)).status_code == 200
        await _end_pooled_connection(harness, relay)
        r = await harness.client.get("/search?q=amoxicillin", headers=page)
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        assert int(r.headers["retry-after"]) >= 1 and r.headers["cache-control"] == "no-store"
        assert "Hệ thống tạm thời gián đoạn" in r.text
        assert (await harness.client.get("/search?q=ibuprofen", headers=page)).status_code == 200


class TestStatementErrors:
    async def test_a_failing_prepared_statement_stays_a_500_and_keeps_its_connection(
        self, pg_harness: Harness
    ) -> None:
        async def divide(session: SessionDep) -> dict[str, int]:
            row = await _DIVIDE.first(session, {"d": 0})
            return {"n": row.n if row is not None else 0}

        pg_harness.app.add_api_route(DIVIDE, divide)
        r = await pg_harness.client.get(DIVIDE)
        assert r.status_code == 500, r.text
        assert r.json()["type"].endswith("/internal-error")
        # Nothing was invalidated: the connection went back to the pool and serves again.
        pool = pg_harness.runtime.database.engine.pool
        assert pool.checkedin() == 1  # type: ignore[attr-defined]
        world = await pg_harness.api.world()
        assert (await pg_harness.client.get(UNKNOWN, headers=world.facility.headers)).status_code == 404
