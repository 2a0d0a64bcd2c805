"""The public price portal and the patient view as their own ASGI app
(`uvicorn --factory price_portal.app:create_app`)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from kit.app import ReadinessCheck, build_app
from kit.runtime import Runtime
from kit.settings import Settings
from price_portal.api import router as api_router
from price_portal.pages import router as pages_router
from price_portal.patient_view.api import router as patient_router

# Most of this context's traffic: the price API (searches, product pages).
BUSIEST: tuple[APIRouter, ...] = (api_router,)
ROUTERS: tuple[APIRouter, ...] = (api_router, patient_router, pages_router)


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
) -> FastAPI:
    return build_app(
        list(ROUTERS),
        service="portal",
        readiness=readiness,
        title="Public price portal",
        settings=settings,
        runtime=runtime,
    )
