"""The core e-prescription service as its own ASGI app (`uvicorn --factory eprescribe.app:create_app`)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from eprescribe.catalogue.api import router as catalogue_router
from eprescribe.console.api import router as console_router
from eprescribe.fhir.api import router as fhir_router
from eprescribe.national.api import router as national_router
from eprescribe.prescriptions.api import router as prescriptions_router
from eprescribe.registry.api import router as registry_router
from kit.app import ReadinessCheck, build_app
from kit.runtime import Runtime
from kit.settings import Settings

# Routes are matched in order: submissions (most of this context's traffic) come first, after
# the FHIR routes, which must come before the contract's `/prescriptions/{code}` ones beside them.
ROUTERS: tuple[APIRouter, ...] = (
    fhir_router,
    prescriptions_router,
    registry_router,
    catalogue_router,
    national_router,
    console_router,
)


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
