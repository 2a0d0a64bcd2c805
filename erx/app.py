"""All three services in one process (what `erx serve` runs): the composition root of the apps."""

from __future__ import annotations

from fastapi import FastAPI

from eprescribe import app as core
from kit.app import build_app
from kit.runtime import Runtime
from kit.settings import Settings
from pharmacy_gateway import app as gateway
from price_portal import app as portal


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    return build_app(
        [*core.ROUTERS, *gateway.ROUTERS, *portal.ROUTERS],
        title="Hệ thống đơn thuốc điện tử quốc gia / National e-prescription system",
        settings=settings,
        runtime=runtime,
        description="Core e-prescription API, pharmacy gateway and public price portal.",
    )
