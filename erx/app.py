"""The apps as deployed: each context's, and all three in one process (what `erx serve` runs).

The composition root adds what only it knows to every app: the migration head `/readyz`
checks. Deployments serve these factories (`uvicorn --factory erx.app:create_core_app`, …);
the contexts' own factories stay for tests and for running one context on its own.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from eprescribe import app as core
from erx.migrate import schema_readiness
from kit.app import build_app
from kit.runtime import Runtime
from kit.settings import Settings, get_settings
from pharmacy_gateway import app as gateway
from price_portal import app as portal


def _runtime(settings: Settings | None, runtime: Runtime | None) -> Runtime:
    return runtime or Runtime.build(settings or get_settings())


# The routers of most of the national day's requests: pharmacies' lookups and dispenses, then
# the portal's price API (searches, product pages).
BUSIEST: tuple[APIRouter, ...] = (*gateway.BUSIEST, *portal.BUSIEST)


def by_traffic() -> list[APIRouter]:
    """Every context's routers, the busiest first.

    A request is matched against the routes one by one, in order, a few microseconds each: a
    search behind all the consoles' and protocols' routes paid for some 75 of them. No two
    contexts share a path, so moving a router ahead of another context's changes no answer;
    within a context the order stays as its app set it (its FHIR routes before its contract's).
    """
    rest = [r for r in (*gateway.ROUTERS, *core.ROUTERS, *portal.ROUTERS) if r not in BUSIEST]
    return [*BUSIEST, *rest]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    runtime = _runtime(settings, runtime)
    return build_app(
        by_traffic(),
        title="Hệ thống đơn thuốc điện tử quốc gia / National e-prescription system",
        runtime=runtime,
        description="Core e-prescription API, pharmacy gateway and public price portal.",
        service="all",
        readiness=[("schema", schema_readiness(runtime.settings))],
    )


def create_core_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    runtime = _runtime(settings, runtime)
    return core.create_app(runtime=runtime, readiness=[("schema", schema_readiness(runtime.settings))])


def create_gateway_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    runtime = _runtime(settings, runtime)
    return gateway.create_app(runtime=runtime, readiness=[("schema", schema_readiness(runtime.settings))])


def create_portal_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    runtime = _runtime(settings, runtime)
    return portal.create_app(runtime=runtime, readiness=[("schema", schema_readiness(runtime.settings))])
