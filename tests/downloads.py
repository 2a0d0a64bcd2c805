"""A download whose reader takes the first chunk and then stops reading, with the response kept open."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI

from tests.clients import new_address

Message = MutableMapping[str, Any]


class HeldDownload:
    """Drive the app over ASGI as a server does for a reader that stalls after the first chunk.

    The first body message is handed over (the reader read it); the app's next write then waits,
    as a server's write waits on a socket the peer does not drain, until `finish()`. Whatever the
    app holds while it waits there (a pooled connection, a snapshot), it holds for as long as
    a slow reader takes.
    """

    def __init__(
        self,
        app: FastAPI,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        address: str | None = None,
    ) -> None:
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "headers": [
                (b"host", b"erx.test"),
                *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(params or {}).encode(),
            "server": ("erx.test", 80),
            "client": (address or new_address(), 50000),
            "root_path": "",
        }
        self.app = app
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self._first = asyncio.Event()
        self._reading = asyncio.Event()
        self._requested = False
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # The reader is still there (no disconnect) for as long as the response runs.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            return
        if message["type"] != "http.response.body":
            return
        if self._first.is_set():
            await self._reading.wait()
        self.chunks.append(message.get("body", b""))
        self._first.set()

    async def open(self) -> bytes:
        """Start the download and return its first chunk; the rest waits for the reader."""
        self._task = asyncio.create_task(self.app(self.scope, self._receive, self._send))
        first = asyncio.create_task(self._first.wait())
        await asyncio.wait({first, self._task}, return_when=asyncio.FIRST_COMPLETED)
        first.cancel()
        if self._task.done():
            self._task.result()  # raises what the app raised
        assert self.chunks, "the app answered without a body"
        return self.chunks[0]

    async def finish(self) -> bytes:
        """Read the rest, as a reader that comes back does; the whole body."""
        assert self._task is not None
        self._reading.set()
        await self._task
        return b"".join(self.chunks)
