"""The one-process app matches its busiest routes first, and no answer depends on that order.

Routes are tried one by one; `erx.app.by_traffic` puts the pharmacies' and the portal's API
first. That is safe only while no two contexts share a path, which is checked here route by route,
and while each context keeps its own order (its FHIR routes before the contract's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.routing import APIRoute

from eprescribe import app as core
from erx.app import BUSIEST, by_traffic
from kit import web
from pharmacy_gateway import app as gateway
from price_portal import app as portal

CONTEXTS = {"core": core.ROUTERS, "gateway": gateway.ROUTERS, "portal": portal.ROUTERS}


def _routes(router: APIRouter) -> Iterator[APIRoute]:
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None)
        if isinstance(nested, APIRouter):
            yield from _routes(nested)


# Included by every console and page router alike: one router serving the same files everywhere.
SHARED = {id(route) for route in _routes(web.static_router)}


def _sample(path: str) -> str:
    """A concrete path the template stands for: every parameter filled with a plain word."""
    return re.sub(r"\{[^}]+\}", "x1", path)


class TestOrder:
    def test_every_router_once_and_the_busiest_first(self) -> None:
        ordered = by_traffic()
        every = [r for routers in CONTEXTS.values() for r in routers]
        assert sorted(map(id, ordered)) == sorted(map(id, every))
        assert tuple(ordered[: len(BUSIEST)]) == BUSIEST

    def test_each_context_keeps_its_own_order(self) -> None:
        ordered = by_traffic()
        for routers in CONTEXTS.values():
            positions = [ordered.index(r) for r in routers]
            assert positions == sorted(positions)

    def test_the_busiest_routes_are_the_lookup_dispense_and_search(self) -> None:
        paths = {route.path for router in BUSIEST for route in _routes(router)}
        assert {
            "/gateway/v1/prescriptions/{code}",
            "/gateway/v1/prescriptions/{code}/dispenses",
            "/portal/api/v1/prices",
        } <= paths


class TestNoSharedPaths:
    def test_no_route_of_one_context_matches_a_path_of_another(self) -> None:
        routes = {
            name: [route for router in routers for route in _routes(router) if id(route) not in SHARED]
            for name, routers in CONTEXTS.items()
        }
        clashes = [
            (name, route.path, other_name, other.path)
            for name, mine in routes.items()
            for other_name, theirs in routes.items()
            if other_name != name
            for route in mine
            for other in theirs
            if other.path_regex.match(_sample(route.path))
            and (route.methods or set()) & (other.methods or set())
        ]
        assert clashes == []
        # The check sees what it should: within one context, paths do overlap.
        portal_routes = routes["portal"]
        assert any(
            other is not route and other.path_regex.match(_sample(route.path))
            for route in portal_routes
            for other in portal_routes
        )
