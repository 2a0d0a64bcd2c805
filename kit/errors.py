"""One base for domain errors and one renderer for RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit import metrics, observability

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://erx.gov.vn/problems/"

FieldErrors = list[dict[str, Any]]

# RFC 9457 as this system writes it; the OpenAPI schema's `Problem` component.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
# What a JSON route declares in the OpenAPI schema for its error answers.
PROBLEM: dict[str, Any] = {
    "description": "Problem details (RFC 9457)",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((400, 401, 403, 404, 409, 422, 429), PROBLEM)


def field_error(
    loc: Sequence[str | int], msg: str, code: str | None = None, /, **params: Any
) -> dict[str, Any]:
    """One invalid field: where, a sentence for programmers, and a stable code with its values.

    `msg` is for API clients and logs; pages and consoles translate `code` (with `params`) from
    their message catalogue, so a person never reads a validator's or a developer's sentence.
    """
    error: dict[str, Any] = {"loc": list(loc), "msg": msg}
    if code:
        error["code"] = code
    if params:
        error["params"] = {key: _json_safe(value) for key, value in params.items()}
    return error


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def pydantic_errors(exc: ValidationError, prefix: Sequence[str | int] = ()) -> FieldErrors:
    """A validation error's fields, each with pydantic's error type as its code."""
    return [
        field_error(
            [*prefix, *_clean_loc(e.get("loc", ()))],
            str(e.get("msg", "")),
            e.get("type"),
            **(e.get("ctx") or {}),
        )
        for e in exc.errors()
    ]


def summarize(errors: FieldErrors) -> str:
    """The first field error as `a.b.0.c: message`, for a problem's `detail`."""
    first = errors[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


class DomainError(Exception):
    """Base of every error a service raises; carries its HTTP status and problem type."""

    status_code = 400
    problem = "bad-request"
    title = "Bad request"
    # A door that speaks another protocol (QĐ 808) sets the whole body it answers instead.
    answer: dict[str, Any] | None = None

    def __init__(
        self,
        detail: str,
        *,
        errors: FieldErrors | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}


class BadRequest(DomainError):
    status_code, problem, title = 400, "bad-request", "Bad request"


class InvalidSignature(DomainError):
    status_code, problem, title = 400, "invalid-signature", "Signature cannot be verified"


class Unauthorized(DomainError):
    status_code, problem, title = 401, "unauthorized", "Missing, expired or revoked credentials"


class Forbidden(DomainError):
    status_code, problem, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status_code, problem, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status_code, problem, title = 409, "conflict", "Conflicts with the current state"


class InvalidContent(DomainError):
    status_code, problem, title = 422, "invalid-content", "Invalid content"

    def __init__(self, detail: str, *, errors: FieldErrors, **kwargs: Any) -> None:
        super().__init__(detail, errors=errors, **kwargs)

    @classmethod
    def field(
        cls, loc: Sequence[str | int], msg: str, code: str | None = None, **params: Any
    ) -> InvalidContent:
        return cls(msg, errors=[field_error(loc, msg, code, **params)])

    @classmethod
    def from_errors(cls, errors: FieldErrors) -> InvalidContent:
        """Refuse with every field error; the first one is the detail."""
        return cls(summarize(errors), errors=errors)


class Throttled(DomainError):
    status_code, problem, title = 429, "throttled", "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    problem: str,
    errors: FieldErrors | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    observability.note_problem(problem)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _clean_loc(loc: Sequence[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def refused(problem: str) -> None:
    """Count a refusal by its problem type (the request's log line names it too)."""
    metrics.REFUSALS.labels(problem).inc()
    observability.note_problem(problem)


async def _domain_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    refused(exc.problem)
    if exc.answer is not None:
        return JSONResponse(exc.answer, status_code=exc.status_code, headers=exc.headers)
    return problem_response(
        exc.status_code,
        exc.title,
        exc.detail,
        problem=exc.problem,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        field_error(
            _clean_loc(e.get("loc", ())), str(e.get("msg", "")), e.get("type"), **(e.get("ctx") or {})
        )
        for e in exc.errors()
    ]
    detail = summarize(errors) if errors else "Invalid request"
    refused("invalid-content")
    return problem_response(422, "Invalid content", detail, problem="invalid-content", errors=errors)


async def _http_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}
    refused(f"http-{exc.status_code}")
    return problem_response(
        exc.status_code,
        titles.get(exc.status_code, "Error"),
        str(exc.detail),
        problem=f"http-{exc.status_code}",
        headers=dict(exc.headers) if exc.headers else None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
