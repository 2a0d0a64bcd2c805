"""The pharmacy gateway as its own ASGI app (`uvicorn --factory pharmacy_gateway.app:create_app`)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from kit.app import ReadinessCheck, build_app
from kit.runtime import Runtime
from kit.settings import Settings
from pharmacy_gateway.console.api import router as console_router
from pharmacy_gateway.dispensing.api import router as dispensing_router
from pharmacy_gateway.fhir.api import router as fhir_router
from pharmacy_gateway.national.api import router as national_router
from pharmacy_gateway.prices.api import router as prices_router

# Most of this context's traffic (and of the national day's): lookups and dispenses.
BUSIEST: tuple[APIRouter, ...] = (dispensing_router,)
ROUTERS: tuple[APIRouter, ...] = (
    dispensing_router,
    fhir_router,
    prices_router,
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
        service="gateway",
        readiness=readiness,
        title="Pharmacy gateway",
        settings=settings,
        runtime=runtime,
    )
