"""The core e-prescription service as its own ASGI app (`uvicorn --factory eprescribe.app:create_app`)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from eprescribe.catalogue.api import router as catalogue_router
from eprescribe.console.api import router as console_router
from eprescribe.prescriptions.api import router as prescriptions_router
from eprescribe.registry.api import router as registry_router
from kit.app import ReadinessCheck, build_app
from kit.runtime import Runtime
from kit.settings import Settings

ROUTERS: tuple[APIRouter, ...] = (registry_router, catalogue_router, prescriptions_router, console_router)


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
) -> FastAPI:
    return build_app(
        list(ROUTERS),
        service="core",
        readiness=readiness,
        title="E-prescription core",
        settings=settings,
        runtime=runtime,
    )
