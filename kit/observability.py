"""What operators see of a request: its id, one JSON log line, and the metrics it feeds.

One pure-ASGI middleware per app (`Telemetry`) gives every request an id (a sane incoming
`X-Request-ID`, else a new one) returned in the answer, times it, and when the answer is sent
writes one JSON line (`erx.request`) and adds it to the request metrics under its route template
(never the raw path, which may hold a prescription code). The line names the route, status,
duration, the problem type of a refusal and the calling client's kind and code as the token or
console session says; never a header, a body, a query string, a token or a patient field.
Whatever else is logged goes through `redact_query` too: a secret query value (the patient
link's `k`) never reaches a log line.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import os
import queue
import re
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit import metrics
from kit.proxy import TrustedProxies, resolve_forwarded
from kit.settings import Settings

REQUEST_ID_HEADER = b"x-request-id"
# What a proxy or a client may hand us as a request id: short, printable, no separators to
# smuggle log fields or header lines through.
_SANE_ID = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")
REQUEST_LOGGER = "erx.request"
# Query parameters whose values are secrets: the patient view's access key (`k`), the pasted
# patient link the `/rx?code=` form carries (key and all), and credentials a client should never
# put in an address but might. Any log line or span attribute shows them as `k=…`.
SECRET_QUERY_PARAMETERS = ("k", "code", "access_token", "token", "client_secret", "password", "secret")
_SECRET_QUERY = re.compile(
    r"(^|[?&;])(" + "|".join(SECRET_QUERY_PARAMETERS) + r")=[^&#;\s\"']*", re.IGNORECASE
)


def redact_query(text: str) -> str:
    """`text` (a query string, a URL, a log message) with the secret parameters' values replaced."""
    if "=" not in text:
        return text
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}=…", text)


@dataclass(slots=True)
class RequestInfo:
    """Facts about the request being answered, noted by whoever learns them."""

    request_id: str
    client_kind: str | None = None
    client_code: str | None = None
    problem: str | None = None


_current: ContextVar[RequestInfo | None] = ContextVar("erx_request", default=None)


def current() -> RequestInfo | None:
    return _current.get()


def current_request_id() -> str | None:
    info = _current.get()
    return info.request_id if info is not None else None


def note_client(kind: str, code: str) -> None:
    """Record who is calling (a token's or a console session's client) for the request's log line."""
    info = _current.get()
    if info is not None:
        info.client_kind, info.client_code = kind, code


def note_problem(problem: str) -> None:
    """Record the problem type a request was refused with."""
    info = _current.get()
    if info is not None:
        info.problem = problem


def _new_id() -> str:
    return os.urandom(16).hex()


# Any token is a method to the server: labels only take the ones the routes know.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"


class Telemetry:
    """Request id, trusted-proxy addresses, one log line and the request metrics, per request."""

    def __init__(self, app: ASGIApp, *, settings: Settings, service: str) -> None:
        self.app = app
        self.settings = settings
        self.service = service
        self.log = logging.getLogger(REQUEST_LOGGER)
        self.log_requests = settings.log_requests
        self.metrics = settings.metrics_enabled
        self.trusted = TrustedProxies(settings.trusted_proxy_networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.trusted:
            resolve_forwarded(scope, self.trusted)
        incoming = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                incoming = value
                break
        request_id = incoming.decode() if incoming is not None and _SANE_ID.match(incoming) else _new_id()
        info = RequestInfo(request_id)
        token = _current.set(info)
        status = 500
        started = time.perf_counter()
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            _current.reset(token)
            route = _route_of(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            if self.metrics:
                metrics.observe_request(method, route, status, elapsed)
            if self.log_requests:
                self.log.log(
                    logging.ERROR if status >= 500 else logging.INFO,
                    "request",
                    extra={
                        "erx": {
                            "request_id": request_id,
                            "service": self.service,
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "client_kind": info.client_kind,
                            "client_code": info.client_code,
                            "problem": info.problem,
                        }
                    },
                )


# ---- logging ------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `erx` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            # A library's message may quote a URL (uvicorn's access line does): no secret values.
            "msg": redact_query(record.getMessage()),
        }
        fields = getattr(record, "erx", None)
        if isinstance(fields, dict):
            entry.update(
                {k: redact_query(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None}
            )
        elif (request_id := getattr(record, "request_id", None)) is not None:
            entry["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: a message or traceback may quote data the request carried.
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


class _RequestIdFilter(logging.Filter):
    """Stamp every record made while a request is answered with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


_listener: logging.handlers.QueueListener | None = None


def configure_logging(settings: Settings) -> None:
    """Send every log record as a JSON line to stderr, written by a thread (once per process).

    The event loop only puts records on a queue; formatting and the write happen off it, so a
    slow log pipe never stalls requests.
    """
    global _listener
    if _listener is not None:
        return
    # The JSON lines never show a record's source line, thread or process: not looking them
    # up spares a walk of the stack and three lookups per record (one per request, at least).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = _KeepRecord(records)
    enqueue.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(enqueue)
    root.setLevel(settings.log_level.upper())
    # uvicorn's own loggers go through the same JSON handler; its access log stays off (the
    # request line above replaces it and never shows a raw path).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # SQLAlchemy logs every statement with its parameters (names, identity numbers) at info
    # when its logger inherits the root's level; only `database_echo` (development) shows SQL.
    # aiosqlite logs each call with its arguments at debug.
    if not settings.database_echo:
        for name in ("sqlalchemy", "aiosqlite"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # `/readyz` reads the schema's revision through Alembic, which says so at info every time.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    _listener = logging.handlers.QueueListener(records, handler, respect_handler_level=True)
    _listener.start()
    atexit.register(_listener.stop)


class _KeepRecord(logging.handlers.QueueHandler):
    """Queue the record itself; the listener's JSON formatter reads its fields."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


__all__ = [
    "JsonFormatter",
    "RequestInfo",
    "Telemetry",
    "configure_logging",
    "current",
    "current_request_id",
    "note_client",
    "note_problem",
    "redact_query",
]
