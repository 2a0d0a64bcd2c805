"""The pharmacy gateway as its own ASGI app (`uvicorn --factory pharmacy_gateway.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from erx.app import build_app
from erx.runtime import Runtime
from erx.settings import Settings
from pharmacy_gateway.api import router
from pharmacy_gateway.console import router as console_router
from pharmacy_gateway.prices_api import router as prices_router


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    return build_app(
        [router, prices_router, console_router], title="Pharmacy gateway", settings=settings, runtime=runtime
    )
