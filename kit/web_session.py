"""Server-side browser sessions and CSRF protection, shared by the consoles and the patient view.

The browser holds only a random 256-bit session id in the `erx_session` cookie (HttpOnly,
SameSite=Strict, Secure over https); the table keeps its SHA-256, so a leaked table opens no
session. A session ends after 30 idle minutes or 8 hours, whichever comes first, and on
sign-out. Every state-changing request carries the session's CSRF token, in a hidden form field
or the `X-CSRF-Token` header; forms shown before there is a session (sign-in, the patient's date
of birth) use a double-submit cookie instead. No token ever travels in a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Column, Index, Integer, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from kit.database import UTCDateTime, bigint_pk
from kit.errors import Forbidden
from kit.security import ClientKind, Principal
from kit.settings import Settings
from kit.time import utcnow

COOKIE = "erx_session"
FORM_COOKIE = "erx_form"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Writing last_seen_at on every request would turn every page view into a write.
TOUCH_INTERVAL = timedelta(seconds=60)
FORM_COOKIE_MAX_AGE = 2 * 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


class SessionKind(StrEnum):
    PRESCRIBER = "prescriber_console"
    PHARMACIST = "pharmacist_console"
    PATIENT = "patient"


class WebSession(SQLModel, table=True):
    """One signed-in browser: a facility, a pharmacy, or a patient holding one prescription."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_expires_at", "expires_at"),)

    id: int | None = Field(default=None, sa_column=bigint_pk())
    id_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(24), nullable=False))
    # Facility code, pharmacy connection code, or prescription code.
    client_id: str = Field(sa_column=Column(String(64), nullable=False))
    credentials_version: int = Field(sa_column=Column(Integer, nullable=False))
    prescriber_id: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    csrf_token: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The earlier of last_seen_at + idle timeout and created_at + absolute lifetime.
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CsrfRefused(Forbidden):
    problem = "csrf-refused"

    def __init__(
        self, detail: str = "This form has expired or did not come from this site; reload the page"
    ) -> None:
        super().__init__(detail)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_token() -> str:
    # 32 bytes: 256 bits, 43 base64url characters.
    return secrets.token_urlsafe(32)


def _expiry(settings: Settings, created_at: datetime, now: datetime) -> datetime:
    return min(
        now + timedelta(seconds=settings.web_session_idle_seconds),
        created_at + timedelta(seconds=settings.web_session_max_seconds),
    )


# ---- the session row -------------------------------------------------------------------


async def open_session(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: SessionKind,
    client_id: str,
    credentials_version: int = 0,
    now: datetime | None = None,
) -> tuple[str, WebSession]:
    """Start a session; return the raw id for the cookie (never stored) and the row."""
    now = now or utcnow()
    raw = _new_token()
    row = WebSession(
        id_hash=_digest(raw),
        kind=kind.value,
        client_id=client_id,
        credentials_version=credentials_version,
        csrf_token=_new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=_expiry(settings, now, now),
    )
    session.add(row)
    await session.flush()
    return raw, row


async def find_session(
    session: AsyncSession,
    settings: Settings,
    raw: str | None,
    kind: SessionKind,
    *,
    now: datetime | None = None,
) -> WebSession | None:
    """Find the live session of this raw id and kind; delete an expired one on sight."""
    if not raw or not _TOKEN.match(raw):
        return None
    now = now or utcnow()
    row = (
        await session.execute(select(WebSession).where(WebSession.id_hash == _digest(raw)))  # type: ignore[arg-type]
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.expires_at <= now:
        await session.delete(row)
        await session.flush()
        return None
    if row.kind != kind.value:
        # Another kind of session in this browser (one cookie per browser): not this one's to end.
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
        row.expires_at = _expiry(settings, row.created_at, now)
        await session.flush()
    return row


async def end_session(session: AsyncSession, row: WebSession) -> None:
    """Sign out: delete the row, so the cookie opens nothing any more."""
    await session.execute(delete(WebSession).where(WebSession.id == row.id))  # type: ignore[arg-type]


async def end_raw(session: AsyncSession, raw: str | None) -> None:
    """End whatever session this browser held before it signs in again."""
    if raw and _TOKEN.match(raw):
        await session.execute(delete(WebSession).where(WebSession.id_hash == _digest(raw)))  # type: ignore[arg-type]


async def choose_prescriber(session: AsyncSession, row: WebSession, prescriber_id: str | None) -> None:
    row.prescriber_id = prescriber_id
    await session.execute(
        update(WebSession).where(WebSession.id == row.id).values(prescriber_id=prescriber_id)  # type: ignore[arg-type]
    )


async def purge_expired(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete sessions past their expiry (run at each sign-in; the index keeps it cheap)."""
    result = await session.execute(
        delete(WebSession).where(WebSession.expires_at <= (now or utcnow()))  # type: ignore[arg-type]
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired_batch(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Delete up to `limit` expired sessions (the housekeeping job; sign-ins purge too)."""
    table = WebSession.__table__  # type: ignore[attr-defined]
    expired = select(table.c.id).where(table.c.expires_at <= now).limit(limit)
    result = await session.execute(delete(table).where(table.c.id.in_(expired.scalar_subquery())))
    return int(getattr(result, "rowcount", 0) or 0)


def principal_of(row: WebSession) -> Principal:
    """Build the principal a console session acts for, to re-check it on every request."""
    kind = ClientKind.FACILITY if row.kind == SessionKind.PRESCRIBER else ClientKind.PHARMACY
    return Principal(kind=kind, client_id=row.client_id, credentials_version=row.credentials_version)


# ---- cookies -----------------------------------------------------------------------------


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def set_session_cookie(response: Response, request: Request, raw: str) -> None:
    # No max-age: the server decides when the session ends; the cookie dies with the browser.
    response.set_cookie(COOKIE, raw, httponly=True, samesite="strict", secure=_secure(request), path="/")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))


# ---- CSRF --------------------------------------------------------------------------------


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser says came from another site."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRefused()
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = origin.split("://", 1)[-1]
        if host != request.url.netloc:
            raise CsrfRefused()


def check_csrf(request: Request, row: WebSession, submitted: str | None = None) -> None:
    """Require the session's token in the form field or the X-CSRF-Token header."""
    check_origin(request)
    given = submitted or request.headers.get(CSRF_HEADER) or ""
    if not given or not hmac.compare_digest(given.encode(), row.csrf_token.encode()):
        raise CsrfRefused()


def form_token(request: Request) -> str:
    """Return the double-submit token of a form shown before there is a session."""
    existing = request.cookies.get(FORM_COOKIE)
    return existing if existing and _TOKEN.match(existing) else _new_token()


def remember_form_token(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=FORM_COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def check_form_token(request: Request, submitted: str | None) -> None:
    """Require the hidden field to equal the cookie: another site can set neither."""
    check_origin(request)
    cookie = request.cookies.get(FORM_COOKIE) or ""
    if not submitted or not cookie or not hmac.compare_digest(submitted.encode(), cookie.encode()):
        raise CsrfRefused()


__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "CsrfRefused",
    "SessionKind",
    "WebSession",
    "check_csrf",
    "check_form_token",
    "check_origin",
    "choose_prescriber",
    "clear_session_cookie",
    "end_raw",
    "end_session",
    "find_session",
    "form_token",
    "open_session",
    "principal_of",
    "purge_expired",
    "purge_expired_batch",
    "remember_form_token",
    "session_cookie",
    "set_session_cookie",
]


async def start_console_session(
    session: AsyncSession,
    settings: Settings,
    request: Request,
    *,
    kind: SessionKind,
    principal: Principal,
    redirect_to: str,
) -> Response:
    """Replace the browser's session with a fresh one after a sign-in and redirect (303)."""
    await end_raw(session, session_cookie(request))
    await purge_expired(session)
    raw, _ = await open_session(
        session,
        settings,
        kind=kind,
        client_id=principal.client_id,
        credentials_version=principal.credentials_version,
    )
    response = RedirectResponse(redirect_to, status_code=303)
    set_session_cookie(response, request, raw)
    return response
