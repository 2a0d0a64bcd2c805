"""Assemble an ASGI app from routers, with the plumbing every service shares."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kit import error_pages, metrics, tracing
from kit.errors import PROBLEM, PROBLEM_SCHEMA, problem_response
from kit.failsafe import CatchAll
from kit.headers import SecurityHeaders
from kit.inputs import ScreenRequest
from kit.observability import Telemetry, configure_logging
from kit.runtime import Runtime, RuntimeDep
from kit.security import KeyRing
from kit.settings import Settings, get_settings
from kit.shedding import Shedding

# A readiness check raises (anything) when this instance should not get traffic; its message
# becomes the problem's detail, so it names what is wrong and never a secret.
ReadinessCheck = Callable[[Runtime], Awaitable[None]]
READINESS_TIMEOUT_SECONDS = 3.0
# Where FastAPI's Swagger UI page loads its script and style from.
SWAGGER_ASSETS = "https://cdn.jsdelivr.net"

common_router = APIRouter()


class NotReady(Exception):
    """What a readiness check raises to say why."""


async def database_ready(runtime: Runtime) -> None:
    """The primary answers (and the replica the portal reads from, when there is one)."""
    await runtime.database.ping()
    if runtime.read_database is not runtime.database:
        await runtime.read_database.ping()


async def signing_keys_ready(runtime: Runtime) -> None:
    """The configured keys load, the one this process signs with is still the newest, and it works."""
    try:
        configured = await asyncio.to_thread(KeyRing.load, runtime.settings, create=False)
    except Exception as exc:
        raise NotReady(f"the signing keys do not load ({type(exc).__name__})") from exc
    if configured.active_kid != runtime.keyring.active_kid:
        raise NotReady("a newer signing key is configured; restart this instance to sign with it")
    runtime.keyring.verify_compact(runtime.keyring.sign_compact({"ready": True}))


DEFAULT_READINESS: tuple[tuple[str, ReadinessCheck], ...] = (
    ("database", database_ready),
    ("signing_keys", signing_keys_ready),
)


@common_router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@common_router.get("/readyz", tags=["operations"], response_model=None)
async def readyz(request: Request, runtime: RuntimeDep) -> dict[str, str] | JSONResponse:
    """The database answers, the schema is at the migration head, the signing keys load."""
    checks: Sequence[tuple[str, ReadinessCheck]] = request.app.state.readiness
    for name, check in checks:
        try:
            await asyncio.wait_for(check(runtime), READINESS_TIMEOUT_SECONDS)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, NotReady) else type(exc).__name__
            return problem_response(
                503, "Not ready", f"{name}: {reason}", problem="not-ready", extra={"check": name}
            )
    return {"status": "ready", "database": runtime.database.dialect}


@common_router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Prometheus exposition of this instance, every worker process added up."""
    body, media_type = metrics.render()
    return Response(body, media_type=media_type)


@common_router.get("/.well-known/jwks.json", tags=["operations"])
async def jwks(runtime: RuntimeDep) -> JSONResponse:
    """Public keys of the national system (tokens and QR signatures); several during rotation."""
    return JSONResponse(runtime.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})


docs_router = APIRouter(include_in_schema=False)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@docs_router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI, with a CSP that admits its own assets and only its own inline script."""
    page = get_swagger_ui_html(openapi_url=request.app.openapi_url, title=f"{request.app.title} - API")
    html = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    policy = (
        f"default-src 'none'; script-src {SWAGGER_ASSETS} {hashes}; style-src {SWAGGER_ASSETS}; "
        "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": policy, "Cache-Control": "no-store"})


# Answers any operation may get whatever it declares: shed, throttled, or out of database.
_ALWAYS_POSSIBLE = (429, 500, 503)


def _document_problems(app: FastAPI) -> None:
    """Make the schema say what the app answers: every error is problem+json (RFC 9457).

    FastAPI documents its own `HTTPValidationError` for 422; this app renders validation errors
    as problems (kit.errors), so the schema says that instead, and every operation lists the
    statuses the middleware may answer (429 quota, 503 overload or database, 500 catch-all).
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = PROBLEM_SCHEMA
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                for status, answer in responses.items():
                    if status.isdigit() and int(status) >= 400:
                        answer["content"] = dict(PROBLEM["content"])
                        answer.setdefault("description", PROBLEM["description"])
                for status in _ALWAYS_POSSIBLE:
                    responses.setdefault(str(status), dict(PROBLEM))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# How many new container objects start a young collection (CPython's default is 700). A request
# makes a few thousand, nearly all freed by reference counting; collecting every 700 cost a
# worker some 3 % of its time under load.
YOUNG_THRESHOLD = 7_000


def settle_heap() -> None:
    """Set the objects startup made (modules, routes, schemas, some 190,000 per worker) aside
    from collection, and collect the young generation less often.

    A full collection traversed all of them, a pause of 70–130 ms under load that every request
    in flight waited out: it was the tail of the latencies (`python -m bench lookup`: p99 165 ms
    before, 62 ms after; README "Benchmarks"). What startup left as garbage is collected first.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def build_app(
    routers: Sequence[APIRouter],
    *,
    title: str,
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    description: str = "",
    service: str = "erx",
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
) -> FastAPI:
    """One FastAPI app over the given routers, with shared plumbing and one runtime.

    `service` names the app in logs; `readiness` adds checks to `/readyz` (the composition root
    adds the migration head, which only it knows).
    """
    runtime = runtime or Runtime.build(settings or get_settings())
    settings = runtime.settings
    configure_logging(settings)
    for database, name in ((runtime.database, "primary"), (runtime.read_database, "replica")):
        if name == "replica" and database is runtime.database:
            continue
        metrics.watch_pool(database.engine, name, database.capacity)
        tracing.instrument_engine(settings, database.engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.tune_garbage_collector:
            settle_heap()
        yield
        await runtime.dispose()
        metrics.process_exit()

    app = FastAPI(
        title=title,
        version="1.0.0",
        description=description,
        lifespan=lifespan,
        telemetry=tracing.fastapi_telemetry(settings),
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.readiness = (*DEFAULT_READINESS, *readiness)
    # problem+json for programs; an HTML page in the visitor's language for a browser on a page.
    error_pages.install(app)
    # Outermost last: Telemetry sees (and logs) every answer, the catch-all sits next to the app.
    app.add_middleware(CatchAll)
    app.add_middleware(ScreenRequest)
    app.add_middleware(Shedding, settings=settings)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(Telemetry, settings=settings, service=service)
    app.include_router(common_router)
    app.include_router(docs_router)
    _document_problems(app)
    for router in routers:
        app.include_router(router)
    return app
