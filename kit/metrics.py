"""Prometheus metrics of the system, correct when several worker processes serve one port.

With `PROMETHEUS_MULTIPROC_DIR` set (by `erx serve --workers N` and the image's entrypoint,
before any worker starts), every process writes its values to memory-mapped files there and
`/metrics` adds them up, so a scrape answered by any worker reports the whole instance. Without
it (one process) the values live in memory. Routes are labelled by their template
(`/gateway/v1/prescriptions/{code}`), never by the raw path.

Names (all prefixed `erx_`): `http_requests_total{method,route,status}`,
`http_request_duration_seconds{method,route}`, `prescriptions_submitted_total{kind}`,
`lookups_total{outcome}`, `dispenses_total`, `refusals_total{problem}`,
`throttled_total`, `db_pool_checked_out{database}`, `db_pool_connections{database}`,
`db_pool_capacity{database}`.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# `_created` series double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "erx_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
DURATION = Histogram(
    "erx_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PRESCRIPTIONS_SUBMITTED = Counter(
    "erx_prescriptions_submitted", "Prescriptions accepted into the national record, by kind", ["kind"]
)
LOOKUPS = Counter("erx_lookups", "Prescription lookups by pharmacies, found or not", ["outcome"])
DISPENSES = Counter("erx_dispenses", "Dispenses recorded")
REFUSALS = Counter("erx_refusals", "Requests refused with a problem answer, by problem type", ["problem"])
THROTTLED = Counter("erx_throttled", "Attempts refused with 429 because of repeated failures")
POOL_CHECKED_OUT = Gauge(
    "erx_db_pool_checked_out",
    "Database connections in use by requests",
    ["database"],
    multiprocess_mode="livesum",
)
IN_FLIGHT = Gauge(
    "erx_requests_in_flight",
    "Requests being answered (what the concurrency limit counts)",
    multiprocess_mode="livesum",
)
POOL_CONNECTIONS = Gauge(
    "erx_db_pool_connections", "Database connections open", ["database"], multiprocess_mode="livesum"
)
POOL_CAPACITY = Gauge(
    "erx_db_pool_capacity",
    "Most connections the pools may open (pool size plus overflow)",
    ["database"],
    multiprocess_mode="livesum",
)

# Children by label values: `.labels()` validates and locks on every call; this is one dict hit.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        children = (REQUESTS.labels(method, route, str(status)), DURATION.labels(method, route))
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def watch_pool(engine: AsyncEngine, database: str, capacity: int) -> None:
    """Follow one engine's connection pool in the pool gauges (once per engine)."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_erx_watched", False):
        return
    sync_engine._erx_watched = True  # type: ignore[attr-defined]
    checked_out = POOL_CHECKED_OUT.labels(database)
    connections = POOL_CONNECTIONS.labels(database)
    POOL_CAPACITY.labels(database).set(capacity)

    @event.listens_for(sync_engine, "checkout")
    def _checkout(*_args: Any) -> None:
        checked_out.inc()

    @event.listens_for(sync_engine, "checkin")
    def _checkin(*_args: Any) -> None:
        checked_out.dec()

    @event.listens_for(sync_engine, "connect")
    def _connect(*_args: Any) -> None:
        connections.inc()

    @event.listens_for(sync_engine, "close")
    def _close(*_args: Any) -> None:
        connections.dec()


_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")


def _forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of workers that have died (killed, restarted by the server)."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        found = _LIVE_FILE.search(path)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            continue


def render() -> tuple[bytes, str]:
    """The exposition text of this instance (every worker's values added up) and its media type."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        _forget_dead_processes(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def process_exit() -> None:
    """Mark this worker's live gauges dead when it stops cleanly."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


__all__ = [
    "DISPENSES",
    "IN_FLIGHT",
    "LOOKUPS",
    "PRESCRIPTIONS_SUBMITTED",
    "REFUSALS",
    "THROTTLED",
    "observe_request",
    "process_exit",
    "render",
    "watch_pool",
]
