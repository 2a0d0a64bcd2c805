"""The public price portal as its own ASGI app (`uvicorn --factory price_portal.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from erx.app import build_app
from erx.runtime import Runtime
from erx.settings import Settings
from price_portal.api import router


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    return build_app([router], title="Public price portal", settings=settings, runtime=runtime)
