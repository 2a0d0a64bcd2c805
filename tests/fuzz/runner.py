"""Schemathesis against a running service: every operation, generated and mutated requests.

Each service (core, gateway, portal) is served by uvicorn on a loopback port from its own
factory, on the test's real database; the schema is read from its `/openapi.json`. Every
operation is called with valid and with invalid data (Hypothesis), authenticated as the
caller it is meant for. A request fails the run when the answer is a 5xx, does not match the
schema, or is an error that is not problem+json.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.pg import free_port

PROBLEM_JSON = "application/problem+json"


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve one ASGI app with uvicorn on a loopback port in a thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fuzzed server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _header(response: Any, name: str) -> str:
    values = response.headers.get(name.lower()) or response.headers.get(name) or [""]
    return str(values[0] if isinstance(values, list) else values)


# The national protocol (QĐ 808) answers its refusals in its own documented JSON
# (`success`, `danh_sach_cac_loi`): programs written for it parse that, not problem+json.
NATIONAL_DIALECT = (
    "/api/auth/dang-nhap-",
    "/api/v1/them-bac-si",
    "/api/v1/xoa-bac-si",
    "/api/v1/gui-don-thuoc",
    "/api/v1/thong-tin-don-thuoc/",
    "/api/v1/cap-nhat-don-thuoc",
)


def problem_json(_ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer is RFC 9457 problem+json with its four members (the national dialect aside)."""
    if response.status_code < 400:
        return None
    if str(case.operation.path).startswith(NATIONAL_DIALECT):
        body = response.json()
        assert "success" in body or {"type", "status"} <= set(body), f"not the dialect's answer: {body}"
        return None
    content_type = _header(response, "content-type")
    assert content_type.startswith(PROBLEM_JSON), f"{response.status_code} answered as {content_type!r}"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body), f"not a problem: {body}"
    assert body["status"] == response.status_code
    return None


@dataclass
class Report:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    operations: int = 0


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    examples: int,
    report: Report,
) -> None:
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance, problem_json]
    label = f"{mode.value} {operation.method.upper()}"

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
        except Exception as exc:  # a refused connection or a reset is a failure too
            report.failures.append(f"{label} {operation.path}: {exc!r}")
            return
        report.requests += 1
        report.by_status[response.status_code] = report.by_status.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:
            if len(report.failures) < 50:
                report.failures.append(
                    f"{label} {case.formatted_path} -> {response.status_code}: {str(exc)[:600]}"
                )

    # Unsatisfiable: nothing to make invalid (an operation without parameters or body).
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()


def fuzz(
    base_url: str,
    headers_for: Callable[[str, str], dict[str, str]],
    *,
    examples: int,
    report: Report,
) -> None:
    """Fuzz every operation the service's schema lists, positive then negative data."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    for result in schema.get_all_operations():
        # An operation the schema cannot describe is a failure of the schema itself.
        operation = result.ok()  # type: ignore[union-attr]
        report.operations += 1
        headers = headers_for(operation.method.upper(), operation.path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, base_url, headers, examples, report)
