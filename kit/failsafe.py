"""The last line: whatever escapes a route is answered as problem+json, never as text/plain.

A browser on a page (kit.error_pages `wants_page`) gets the site's error page instead, in its
language, or in Vietnamese with English below when it chose none. A database that cannot be reached (down, restarting, failing over, pool exhausted) is a 503
with `Retry-After`: the client retries and the service recovers by itself. Anything else is a
500 whose log line names the exception's type only (its message may quote request data).
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit import error_pages, observability
from kit.errors import PROBLEM_BASE, PROBLEM_JSON

log = logging.getLogger("erx.failsafe")

UNAVAILABLE_RETRY_AFTER_SECONDS = 2

# What asyncpg and SQLAlchemy raise when the server is gone or not accepting connections yet.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection became free in time
    ConnectionError,
    TimeoutError,
)
try:  # asyncpg is PostgreSQL's driver; SQLite-only installs may run without it.
    import asyncpg

    _UNAVAILABLE += (
        asyncpg.CannotConnectNowError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.AdminShutdownError,
        asyncpg.InterfaceError,
    )
except ImportError:  # pragma: no cover
    pass


def database_unavailable(exc: BaseException) -> bool:
    """Whether the error means the database is out of reach (rather than a bug or bad data)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _UNAVAILABLE):
            # SQLite's "database is locked" is an OperationalError too: also a wait-and-retry.
            return True
        current = current.__cause__ or current.__context__
    return False


def _problem(status: int, problem: str, title: str, detail: str) -> bytes:
    body = {"type": PROBLEM_BASE + problem, "title": title, "status": status, "detail": detail}
    return json.dumps(body).encode()


class CatchAll:
    """Pure ASGI middleware: an unhandled exception before the answer started becomes problem+json."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            unavailable = database_unavailable(exc)
            if unavailable:
                log.warning("database unavailable", exc_info=exc)
            else:
                log.error("unhandled error", exc_info=exc)
            if started:
                raise  # the answer is half sent: the server closes the connection
            if unavailable:
                status, problem, title = 503, "unavailable", "Service temporarily unavailable"
                detail = "The database cannot be reached at the moment; retry shortly"
                headers = [(b"retry-after", str(UNAVAILABLE_RETRY_AFTER_SECONDS).encode())]
            else:
                status, problem, title = 500, "internal-error", "Internal error"
                detail = "The request could not be completed; it changed nothing"
                headers = []
            observability.note_problem(problem)
            if await _page(scope, receive, send, status, problem, headers):
                return
            body = _problem(status, problem, title, detail)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"cache-control", b"no-store"),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


async def _page(
    scope: Scope, receive: Receive, send: Send, status: int, problem: str, headers: list[tuple[bytes, bytes]]
) -> bool:
    """Answer a browser on a page with the error page; False for a program (or if the page fails)."""
    request = Request(scope)
    if not error_pages.wants_page(request):
        return False
    try:
        extra = {name.decode(): value.decode() for name, value in headers}
        page = error_pages.error_page(request, status, problem, extra, bilingual=True)
    except Exception as exc:  # the page itself broke: the plain problem still goes out
        log.error("error page failed", exc_info=exc)
        return False
    page.headers["cache-control"] = "no-store"
    await page(scope, receive, send)
    return True
