"""Shared web plumbing: Jinja2 pages, Vietnamese/English choice, message catalogues, static files.

How a package adds pages (the price portal is the first user):

    from kit import web

    web.MESSAGES.add({"vi": {"console.title": "Bàn làm việc"}, "en": {"console.title": "Desk"}})
    web.register_static("console", Path(__file__).parent / "static")
    site = web.Site(Path(__file__).parent / "templates")
    router.include_router(web.static_router)  # serves /static/<name>/<file>; harmless twice

    @router.get("/console", response_class=HTMLResponse)
    async def desk(request: Request) -> HTMLResponse:
        return site.render(request, "desk.html", {"title": ...}, cache_seconds=0)

Templates extend "base.html" (blocks: title, description, head, nav, content, footer, scripts)
and get `t(key, **values)`, `lang`, `lang_url(code)`, `url_with(**changes)` and
`static_url(name, file)`, plus the formatters `money(v)`, `number(v)`, `day(v)` (dd/mm/yyyy in
both languages), `moment(v)` (dd/mm/yyyy HH:MM, Vietnam time), `deadline(v)` (a `<time>` of a
collection deadline), `unit(u)` (a dispensing unit in the page's language), `in_words(n)` and
`error_text(e)` (a field error translated from its code).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel

from kit.errors import NotFound
from kit.text import match_key, number_in_words
from kit.time import VIETNAM_TIME, is_end_of_vn_day

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
BASE_DIR = Path(__file__).parent
BASE_TEMPLATES = BASE_DIR / "templates"
BASE_STATIC = BASE_DIR / "static"

# Pages load nothing from elsewhere; the browser is told so and refuses it if a page tried.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


# ---- messages ----------------------------------------------------------------------------


class Messages:
    """Message catalogues per language; each package adds its own keys (prefix them)."""

    def __init__(self) -> None:
        self._catalogues: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}

    def add(self, catalogue: Mapping[str, Mapping[str, str]]) -> None:
        """Merge a {language: {key: text}} catalogue; a key may not change its text."""
        for lang, entries in catalogue.items():
            if lang not in self._catalogues:
                raise ValueError(f"unsupported language {lang!r}")
            target = self._catalogues[lang]
            for key, value in entries.items():
                if key in target and target[key] != value:
                    raise ValueError(f"message {key!r} ({lang}) is already defined differently")
                target[key] = value

    def text(self, lang: str, key: str, **values: Any) -> str:
        """The message in `lang`, else in Vietnamese, else the key itself (visible in review)."""
        entry = self._catalogues.get(lang, {}).get(key) or self._catalogues[DEFAULT_LANGUAGE].get(key)
        if entry is None:
            return key
        return entry.format(**values) if values else entry

    def error_text(self, lang: str, error: Mapping[str, Any]) -> str:
        """A field error in `lang`, from its stable code and values; never the validator's sentence."""
        code = str(error.get("code") or "invalid")
        params = {
            k: format_number(v, lang) if isinstance(v, int) and not isinstance(v, bool) else _joined(v)
            for k, v in (error.get("params") or {}).items()
        }
        for key in (f"error.{code}.{params.get('rule', '')}", f"error.{code}", "error.invalid"):
            entry = self._catalogues.get(lang, {}).get(key) or self._catalogues[DEFAULT_LANGUAGE].get(key)
            if entry is not None:
                return entry.format_map(_Lenient(params))
        return code

    def with_prefixes(self, lang: str, prefixes: tuple[str, ...]) -> dict[str, str]:
        """Every message whose key starts with one of `prefixes`, in `lang` (for a page's script)."""
        every = self._catalogues[DEFAULT_LANGUAGE].keys() | self._catalogues.get(lang, {}).keys()
        return {key: self.text(lang, key) for key in sorted(every) if key.startswith(prefixes)}

    def translator(self, lang: str) -> Callable[..., str]:
        def t(key: str, **values: Any) -> str:
            return self.text(lang, key, **values)

        return t

    def untranslated(self) -> dict[str, set[str]]:
        """Keys some language lacks, by language (a test keeps this empty)."""
        every = set().union(*(c.keys() for c in self._catalogues.values()))
        return {lang: every - c.keys() for lang, c in self._catalogues.items() if every - c.keys()}


class _Lenient(dict[str, Any]):
    """Format values: a placeholder without a value stays empty instead of failing the page."""

    def __missing__(self, key: str) -> str:
        return ""


def _joined(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


MESSAGES = Messages()


def load_messages(path: Path) -> dict[str, dict[str, str]]:
    """Read a package's `messages.json` ({language: {key: text}}) and add it to the catalogue."""
    catalogue: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    MESSAGES.add(catalogue)
    return catalogue


load_messages(BASE_DIR / "messages.json")


# ---- language choice ---------------------------------------------------------------------


@dataclass(frozen=True)
class LanguageChoice:
    lang: str
    remember: bool  # set the cookie: the visitor chose it with ?lang=
    chosen: bool = True  # False: nobody asked (no ?lang=, no cookie), so it is the default


def choose_language(request: Request) -> LanguageChoice:
    """`?lang=` (remembered in a cookie), else the cookie, else Vietnamese.

    Vietnamese first: the browser's Accept-Language does not switch the site, since many phones
    in Vietnam ship with English as their system language; English is one click away.
    """
    asked = request.query_params.get("lang")
    cookie = request.cookies.get(LANGUAGE_COOKIE)
    if asked in LANGUAGES:
        return LanguageChoice(asked, remember=cookie != asked)
    if cookie in LANGUAGES:
        return LanguageChoice(cookie, remember=False)
    return LanguageChoice(DEFAULT_LANGUAGE, False, chosen=False)


def url_with(request: Request, **changes: Any) -> str:
    """This page's path and query with some parameters changed (None removes one)."""
    params = dict(request.query_params.multi_items())
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


# ---- formatting --------------------------------------------------------------------------


def format_number(value: int | float | None, lang: str, digits: int = 0) -> str:
    """Vietnamese groups thousands with '.' and writes decimals with ','; English the reverse."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def format_money(value: int | None, lang: str) -> str:
    return "—" if value is None else f"{format_number(value, lang)} ₫"


def format_day(value: date | datetime | None, lang: str) -> str:
    """dd/mm/yyyy in both languages (an instant: its day in Vietnam), never month first."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(VIETNAM_TIME).date()
    return value.strftime("%d/%m/%Y")


def format_moment(value: datetime | None, lang: str, *, seconds: bool = False) -> str:
    """dd/mm/yyyy HH:MM (24-hour) in Vietnam time, in both languages."""
    if value is None:
        return "—"
    return value.astimezone(VIETNAM_TIME).strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def format_deadline(value: datetime | None, lang: str) -> Markup:
    """A collection deadline as a `<time>`: "until the end of 07/12/2026 (23:59:59)", to the second."""
    if value is None:
        return Markup("—")
    local = value.astimezone(VIETNAM_TIME)
    day, clock = local.strftime("%d/%m/%Y"), local.strftime("%H:%M:%S")
    key = "web.deadline.end_of_day" if is_end_of_vn_day(local) else "web.deadline.at"
    text = MESSAGES.text(lang, key, day=day, time=clock)
    return Markup('<time datetime="{}" data-deadline>{}</time>').format(local.isoformat(), text)


def format_unit(unit: str, lang: str) -> str:
    """A dispensing unit in the page's language (`viên` is a tablet in English); unknown ones as written."""
    if lang == DEFAULT_LANGUAGE:
        return unit
    key = f"web.unit.{match_key(unit)}"
    text = MESSAGES.text(lang, key)
    return unit if text == key else text


# ---- static files ------------------------------------------------------------------------


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    digest: str


_STATIC: dict[str, dict[str, StaticFile]] = {}


def register_static(name: str, directory: Path) -> None:
    """Serve every file of `directory` at /static/<name>/<file>, read once into memory."""
    files: dict[str, StaticFile] = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if path.is_file() and not path.name.startswith("."):
            body = path.read_bytes()
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media.startswith("text/") or media in {"application/javascript", "image/svg+xml"}:
                media += "; charset=utf-8"
            files[path.name] = StaticFile(body, media, hashlib.sha256(body).hexdigest()[:12])
    _STATIC[name] = files


def static_url(name: str, filename: str) -> str:
    """URL of a registered static file, versioned by content so it can be cached for a year."""
    item = _STATIC.get(name, {}).get(filename)
    if item is None:
        raise KeyError(f"no static file {name}/{filename}")
    return f"/static/{name}/{filename}?v={item.digest}"


static_router = APIRouter(include_in_schema=False)


@static_router.get("/static/{name}/{filename}")
async def static_file(name: str, filename: str, request: Request) -> Response:
    """A registered static file; unknown names are 404 (nothing outside the directories)."""
    item = _STATIC.get(name, {}).get(filename)
    if item is None:
        raise NotFound(f"No static file {name}/{filename}")
    etag = f'"{item.digest}"'
    versioned = request.query_params.get("v") == item.digest
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable" if versioned else "public, max-age=3600",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(item.body, media_type=item.media_type, headers=headers)


register_static("erx", BASE_STATIC)


# ---- pages -------------------------------------------------------------------------------


class Site:
    """The Jinja2 environment of one package: its own templates first, then the base layout."""

    def __init__(self, *template_dirs: Path, messages: Messages = MESSAGES) -> None:
        self.messages = messages
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in (*template_dirs, BASE_TEMPLATES)]),
            autoescape=select_autoescape(["html", "xml", "svg"], default_for_string=True),
            undefined=StrictUndefined,
            auto_reload=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["static_url"] = static_url
        # Compile every template now, at startup, so no request reads a template file.
        for name in self.env.list_templates(extensions=["html", "svg"]):
            self.env.get_template(name)

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        cache_seconds: int = 60,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """Render a page in the visitor's language, with caching and security headers."""
        choice = choose_language(request)
        lang = choice.lang
        values: dict[str, Any] = {
            "request": request,
            "lang": lang,
            "other_lang": "en" if lang == "vi" else "vi",
            "languages": LANGUAGES,
            "t": self.messages.translator(lang),
            "lang_url": lambda code: url_with(request, lang=code),
            "url_with": lambda **changes: url_with(request, **changes),
            "money": lambda v: format_money(v, lang),
            "number": lambda v, digits=0: format_number(v, lang, digits),
            "day": lambda v: format_day(v, lang),
            "moment": lambda v, seconds=False: format_moment(v, lang, seconds=seconds),
            "deadline": lambda v: format_deadline(v, lang),
            "unit": lambda u: format_unit(u, lang),
            "in_words": lambda n: number_in_words(n, lang),
            "error_text": lambda e: self.messages.error_text(lang, e),
            **(context or {}),
        }
        body = self.env.get_template(template).render(values)
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Content-Language"] = lang
        response.headers["Vary"] = "Accept-Language, Cookie"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if choice.remember:
            response.set_cookie(
                LANGUAGE_COOKIE, lang, max_age=LANGUAGE_COOKIE_MAX_AGE, samesite="lax", httponly=True
            )
            # A response that sets a cookie is this visitor's alone.
            response.headers["Cache-Control"] = "private, no-store"
        elif cache_seconds > 0:
            response.headers["Cache-Control"] = f"public, max-age={cache_seconds}"
        else:
            response.headers["Cache-Control"] = "no-store"
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response


# In memory up to this much, then a temporary file.
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
SPOOL_READ_BYTES = 64 * 1024


async def spool(chunks: AsyncIterator[str]) -> tempfile.SpooledTemporaryFile[bytes]:
    """Drain `chunks` (which read the database) into a spool before anything is answered.

    A streamed download otherwise holds its database connection (and a snapshot) for as long
    as the slowest reader takes; spooled, the connection goes back to the pool before the first
    byte goes out, and a slow reader only holds a file. Read before the answer starts, a
    failure is still a proper error answer, not a 200 cut short.
    """
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - handed on
    try:
        async for chunk in chunks:
            # Past the in-memory size the spool is a file on disk: written off the event loop.
            await asyncio.to_thread(file.write, chunk.encode())
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return file


async def unspool(file: tempfile.SpooledTemporaryFile[bytes]) -> AsyncIterator[bytes]:
    """Hand a spool out block by block (a StreamingResponse body), then close it."""
    try:
        while block := await asyncio.to_thread(file.read, SPOOL_READ_BYTES):
            yield block
    finally:
        file.close()


def model_response(model: BaseModel, *, status_code: int = 200) -> Response:
    """A response model as JSON in one pass of pydantic's serializer (hot routes).

    FastAPI would validate the returned model against `response_model` again, dump it to Python
    objects and then encode those: three walks over the same tree where one does.
    """
    return Response(
        model.model_dump_json(by_alias=True), status_code=status_code, media_type="application/json"
    )
