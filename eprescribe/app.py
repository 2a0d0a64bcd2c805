"""The core e-prescription service as its own ASGI app (`uvicorn --factory eprescribe.app:create_app`)."""

from __future__ import annotations

from fastapi import FastAPI

from eprescribe.api import router
from eprescribe.console import router as console_router
from eprescribe.patient_view import router as patient_router
from erx.app import build_app
from erx.runtime import Runtime
from erx.settings import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    return build_app(
        [router, console_router, patient_router],
        title="E-prescription core",
        settings=settings,
        runtime=runtime,
    )
