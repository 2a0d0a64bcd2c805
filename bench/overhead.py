"""CPU per request of the observability middleware, measured in-process (robust on a shared machine).

`python -m bench.overhead` drives one route through ASGI directly, with and without
`kit.observability.Telemetry` (request id, one JSON log line written by the logging thread,
request metrics in multiprocess mode as in production), and prints the CPU time per request of
each, best of several alternating rounds. CPU time counts every thread of the process, so the
log thread's formatting and writing are included.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from typing import Any

ROUNDS = 5
REQUESTS = 5000


async def _drive(app: Any, count: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/gateway/v1/prescriptions/01001K7Q2M9X-c",
        "raw_path": b"/gateway/v1/prescriptions/01001K7Q2M9X-c",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"erx.test"), (b"authorization", b"Bearer x")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    started = time.process_time()
    for _ in range(count):
        await app(dict(scope), receive, send)
    return (time.process_time() - started) / count


def main() -> None:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="erx-overhead-")
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the log lines go nowhere, their cost stays

    from fastapi import APIRouter, FastAPI

    from kit.observability import Telemetry, configure_logging
    from kit.settings import Settings

    settings = Settings()
    configure_logging(settings)
    router = APIRouter()

    @router.get("/gateway/v1/prescriptions/{code}")
    async def lookup(code: str) -> dict[str, str]:
        return {"code": code}

    def app(observed: bool) -> FastAPI:
        made = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
        made.include_router(router)
        if observed:
            made.add_middleware(Telemetry, settings=settings, service="bench")
        return made

    bare, observed = app(False), app(True)
    best = {"bare": float("inf"), "observed": float("inf")}
    for _ in range(ROUNDS):
        best["bare"] = min(best["bare"], asyncio.run(_drive(bare, REQUESTS)))
        best["observed"] = min(best["observed"], asyncio.run(_drive(observed, REQUESTS)))
    cost = best["observed"] - best["bare"]
    print(
        f"route alone: {best['bare'] * 1e6:.1f} µs CPU per request; with the middleware: "
        f"{best['observed'] * 1e6:.1f} µs; the middleware: {cost * 1e6:.1f} µs per request",
        file=sys.__stdout__,
    )


if __name__ == "__main__":
    main()
