"""Routes of the national protocol answer every refusal in the dialect's shape, not RFC 9457.

A refusal is re-raised as `DialectRefused` (its `answer` is the dialect's body), so it still
leaves the route as an exception: the request's session rolls back (and writes what must
outlive a refusal) before the one error handler renders it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from eprescribe.national import answers
from eprescribe.national.exceptions import DialectRefused
from eprescribe.national.problems import FORMAT, INVALID, Problem
from kit import errors

# Conflicts with the record (a quantity beyond what remains, a code in use) are rule refusals in
# the dialect, which answers every one of them with 422.
DIALECT_STATUS = {409: 422}
# Bodies are read raw (see the routes); the schema still says one JSON object is expected.
JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
}


def _problems(exc: errors.DomainError) -> list[Problem]:
    found = [
        Problem(tuple(e["loc"][1:] if e["loc"][:1] == ["body"] else e["loc"]), str(e["msg"]), INVALID)
        for e in exc.errors or []
    ]
    return found or [Problem((), exc.detail, INVALID)]


def in_dialect(exc: errors.DomainError) -> DialectRefused:
    """The same refusal in the dialect's shape, keeping its status (409 becomes 422)."""
    if isinstance(exc, DialectRefused):
        return exc
    status = DIALECT_STATUS.get(exc.status_code, exc.status_code)
    body = answers.sign_in_refused(exc.detail, _problems(exc))
    return DialectRefused(status, body, problem=exc.problem, headers=exc.headers)


class DialectRoute(APIRoute):
    """An APIRoute whose refusals are answered in the national protocol's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except DialectRefused:
                raise
            except errors.DomainError as exc:
                raise in_dialect(exc) from exc
            except RequestValidationError as exc:
                problems = [
                    Problem(tuple(str(p) for p in e.get("loc", ())), str(e.get("msg", "")), FORMAT)
                    for e in exc.errors()
                ]
                body = answers.sign_in_refused("Yêu cầu không hợp lệ", problems)
                raise DialectRefused(422, body, problem="invalid-content") from exc

        return answer
