"""Screen what the router reads before any route does: the path and the query string.

Bodies are screened by their schemas (`kit.fields.Screened`); this is the same screen for the
parts of a request no schema covers as a whole, so that a NUL or a bidirectional override in a
path segment or a query parameter is a 422 naming it, never a database error.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from kit import observability
from kit.errors import PROBLEM_BASE, PROBLEM_JSON, BadRequest
from kit.fields import unsafe_reason
from kit.jsonstrict import StrictJsonError, parse_strict

# Longer query strings are not a search anyone types; a URL this long is refused whole.
MAX_QUERY_BYTES = 8192


def _refusal(loc: list[str], msg: str) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + "invalid-content",
        "title": "Invalid content",
        "status": 422,
        "detail": f"{'.'.join(loc)}: {msg}",
        "errors": [{"loc": loc, "msg": msg}],
    }


def screen(scope: Scope) -> dict[str, Any] | None:
    """The problem to answer for an unsafe path or query string, else None."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        return _refusal(["path"], "must be UTF-8 text")
    if (reason := unsafe_reason(path)) is not None:
        return _refusal(["path"], reason)
    query: bytes = scope.get("query_string", b"")
    if len(query) > MAX_QUERY_BYTES:
        return _refusal(["query"], f"must be at most {MAX_QUERY_BYTES} bytes")
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return _refusal(["query"], "must be UTF-8 text")
    for name, value in pairs:
        for text in (name, value):
            if (reason := unsafe_reason(text)) is not None:
                return _refusal(["query", name if unsafe_reason(name) is None else "?"], reason)
    return None


class ScreenRequest:
    """Pure ASGI middleware: refuse unsafe paths and query strings with problem+json 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (problem := screen(scope)) is not None:
            observability.note_problem("invalid-content")
            body = json.dumps(problem).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 422,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


# ---- bodies read before the transaction opens ---------------------------------------------------
# A route that reads its body itself would read it inside the request's transaction: a slow
# upload would hold a pooled connection (on SQLite, the only write lock) for as long as it
# trickles in. These dependencies come first in a route's parameters, so FastAPI reads the body
# before it opens the session.


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return parse_strict(raw)
    except StrictJsonError as exc:
        raise BadRequest(f"The body is not valid JSON ({exc})") from exc


JsonBody = Annotated[Any, Depends(_json_body)]


def bytes_body(limit: int, too_large: str) -> Any:
    """A dependency reading at most `limit` bytes of body (refused beyond, whatever the length says)."""

    async def _read(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BadRequest(too_large)
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > limit:
                raise BadRequest(too_large)
        return bytes(data)

    return Depends(_read)
