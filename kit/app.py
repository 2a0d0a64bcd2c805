"""Assemble an ASGI app from routers, with the plumbing every service shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from kit import error_pages
from kit.errors import problem_response
from kit.runtime import Runtime, RuntimeDep
from kit.settings import Settings, get_settings

common_router = APIRouter()


@common_router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@common_router.get("/readyz", tags=["operations"], response_model=None)
async def readyz(runtime: RuntimeDep) -> dict[str, str] | JSONResponse:
    """The database answers."""
    try:
        await runtime.database.ping()
    except Exception as exc:
        return problem_response(503, "Not ready", f"database: {type(exc).__name__}", problem="not-ready")
    return {"status": "ready", "database": runtime.database.dialect}


@common_router.get("/.well-known/jwks.json", tags=["operations"])
async def jwks(runtime: RuntimeDep) -> JSONResponse:
    """Public keys of the national system (tokens and QR signatures); several during rotation."""
    return JSONResponse(runtime.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})


def build_app(
    routers: Sequence[APIRouter],
    *,
    title: str,
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    description: str = "",
) -> FastAPI:
    """One FastAPI app over the given routers, with shared plumbing and one runtime."""
    runtime = runtime or Runtime.build(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await runtime.database.dispose()

    app = FastAPI(title=title, version="1.0.0", description=description, lifespan=lifespan)
    app.state.runtime = runtime
    # problem+json for programs; an HTML page in the visitor's language for a browser on a page.
    error_pages.install(app)
    app.include_router(common_router)
    for router in routers:
        app.include_router(router)
    return app
