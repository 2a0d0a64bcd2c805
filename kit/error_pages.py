"""Errors as a person sees them: an HTML page in the page's language for a browser on a page path.

The JSON APIs always answer problem+json (RFC 9457), whatever the Accept header says; a browser
navigating to a page (Accept: text/html), an unknown path included, gets the same status as a
page of the site with a sentence from the message catalogue and a way home, never a
developer's `detail`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit import web
from kit.errors import DomainError, install_problem_handlers

# Paths that answer programs: problem+json, always.
API_PREFIXES = ("/api/", "/gateway/", "/portal/api/", "/console/api/", "/.well-known/", "/static/")
API_PATHS = frozenset({"/openapi.json", "/docs", "/redoc", "/healthz", "/readyz", "/metrics"})
# Statuses with a heading and a sentence of their own; any other shows the 400 or 500 one.
KNOWN_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503})

site = web.Site()

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def is_api_path(path: str) -> bool:
    # The consoles' scripts call `/console/<name>/api/...`: programs too.
    return path in API_PATHS or path.startswith(API_PREFIXES) or "/api/" in path


def wants_page(request: Request) -> bool:
    """A browser navigating (or posting a form) to a page, not a program or a script's fetch."""
    return "text/html" in request.headers.get("accept", "") and not is_api_path(request.url.path)


def home_of(path: str) -> str:
    """Where the error page's button leads: the console the path belongs to, else the home page."""
    parts = path.split("/")
    return "/".join(parts[:3]) if len(parts) > 2 and parts[1] == "console" and parts[2] else "/"


def _status_key(status: int) -> int:
    if status in KNOWN_STATUSES:
        return status
    return 500 if status >= 500 else 400


def _texts(lang: str, status: int, problem: str) -> tuple[str, str]:
    key = _status_key(status)
    specific = f"web.problem.{problem}"
    message = web.MESSAGES.text(lang, specific)
    if message == specific:
        message = web.MESSAGES.text(lang, f"web.error.{key}.body")
    return web.MESSAGES.text(lang, f"web.error.{key}"), message


def error_page(
    request: Request,
    status: int,
    problem: str,
    headers: dict[str, str] | None = None,
    *,
    bilingual: bool = False,
) -> Response:
    """The HTML page of a refusal: a heading by status, a sentence by problem type if there is one.

    `bilingual`: when the visitor chose no language, the other one's heading and sentence follow
    (a page the site could not build may be the first and only one the visitor sees).
    """
    choice = web.choose_language(request)
    heading, message = _texts(choice.lang, status, problem)
    also = None
    if bilingual and not choice.chosen:
        other = next(code for code in web.LANGUAGES if code != choice.lang)
        other_heading, other_message = _texts(other, status, problem)
        also = {"lang": other, "heading": other_heading, "message": other_message}
    return site.render(
        request,
        "error.html",
        {
            "heading": heading,
            "message": message,
            "also": also,
            "home": home_of(request.url.path),
            "status": status,
            "problem": problem,
        },
        status_code=status,
        cache_seconds=0,
        headers=headers,
    )


def _described(exc: Exception) -> tuple[int, str, dict[str, str] | None]:
    if isinstance(exc, DomainError):
        return exc.status_code, exc.problem, exc.headers
    if isinstance(exc, RequestValidationError):
        return 422, "invalid-content", None
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, f"http-{exc.status_code}", dict(exc.headers) if exc.headers else None
    return 500, "internal", None


def install(app: FastAPI) -> None:
    """Install the problem+json handlers, each answering browsers on page paths with a page."""
    install_problem_handlers(app)
    for kind in (DomainError, RequestValidationError, StarletteHTTPException):
        as_json: Handler = app.exception_handlers[kind]

        async def handler(request: Request, exc: Exception, as_json: Handler = as_json) -> Response:
            if wants_page(request):
                status, problem, headers = _described(exc)
                return error_page(request, status, problem, headers)
            answer = as_json(request, exc)
            return await answer if inspect.isawaitable(answer) else answer

        app.add_exception_handler(kind, handler)
