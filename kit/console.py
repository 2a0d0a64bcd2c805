"""Scaffolding of the browser consoles: the signed-in session, its pages, signing in and out.

A console (the prescriber's desk, the pharmacist's counter) is a prefix, a kind of session, a
site of templates and a way to re-load its client on every request. Everything a console does
beyond that (prescribing, dispensing) is its own; this module holds what both do the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from kit import observability, web, web_session
from kit.database import SessionDep
from kit.errors import Throttled, Unauthorized
from kit.runtime import Runtime, RuntimeDep, client_address
from kit.security import Principal
from kit.throttle import Pace
from kit.web_session import SessionKind, WebSession

ClientT = TypeVar("ClientT")

# Messages every console script gets beside its own: field errors by code, refusals by problem type.
JS_SHARED_PREFIXES = ("error.", "web.problem.", "web.error.", "web.deadline.")

# Re-load a session's client from its principal; raises Unauthorized when it may no longer act.
LoadClient = Callable[[AsyncSession, Principal], Awaitable[ClientT]]
# Check a code and secret behind the guessing throttle; raises Unauthorized on a wrong secret
# (already counted) and Throttled when blocked.
Authenticate = Callable[[AsyncSession, Runtime, str, str, str, Pace], Awaitable[Principal]]


@dataclass
class Signed(Generic[ClientT]):
    """A signed-in browser: its session row and the client it acts for."""

    row: WebSession
    client: ClientT


@dataclass(frozen=True)
class NavItem:
    key: str
    path: str
    label: str


@dataclass(frozen=True)
class SignInForm:
    """What the console's sign-in page asks for; texts are message keys."""

    heading: str
    intro: str
    id_label: str
    id_name: str
    id_hint: str
    id_max_length: int
    credential_label: str
    submit: str
    wrong: str
    throttled: str


class Console(Generic[ClientT]):
    """One console: session dependency, page rendering, sign-in and sign-out."""

    def __init__(
        self,
        *,
        prefix: str,
        kind: SessionKind,
        site: web.Site,
        messages: Mapping[str, Mapping[str, str]],
        js_prefix: str,
        nav: Sequence[NavItem],
        sign_in_form: SignInForm,
        load_client: LoadClient[ClientT],
        after_sign_in: str,
        layout: str,
    ) -> None:
        self.prefix = prefix
        self.kind = kind
        self.site = site
        self.messages = messages
        self.js_prefix = js_prefix
        self.nav = nav
        self.sign_in_form = sign_in_form
        self.load_client = load_client
        self.after_sign_in = after_sign_in
        self.layout = layout

    # ---- the session of a request --------------------------------------------------------

    async def current(
        self, request: Request, session: SessionDep, runtime: RuntimeDep
    ) -> Signed[ClientT] | None:
        """The live session of this browser and its client, re-checked (a FastAPI dependency)."""
        row = await web_session.find_session(
            session, runtime.settings, web_session.session_cookie(request), self.kind
        )
        if row is None:
            return None
        observability.note_client(row.kind, row.client_id)
        try:
            # Re-checked on every request: a suspended, revoked or re-keyed client is out at once.
            client = await self.load_client(session, web_session.principal_of(row))
        except Unauthorized:
            await web_session.end_session(session, row)
            return None
        return Signed(row, client)

    @staticmethod
    def require(signed: Signed[ClientT] | None) -> Signed[ClientT]:
        """The signed-in session, or 401 for a script whose session has ended."""
        if signed is None:
            raise Unauthorized("Your console session has ended; sign in again")
        return signed

    # ---- pages -----------------------------------------------------------------------------

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def to_sign_in(self, request: Request) -> RedirectResponse:
        response = self.redirect(f"{self.prefix}/sign-in")
        if web_session.session_cookie(request):
            web_session.clear_session_cookie(response, request)
        return response

    def _nav(self, signed: Signed[ClientT] | None, current: str) -> list[dict[str, Any]]:
        if signed is None:
            return []
        return [
            {"href": f"{self.prefix}{item.path}", "label": item.label, "current": item.key == current}
            for item in self.nav
        ]

    def page(
        self,
        request: Request,
        template: str,
        signed: Signed[ClientT] | None,
        current: str = "",
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """Render a console page: never cached, with the session's CSRF token and navigation."""
        values: dict[str, Any] = {
            "home": self.prefix,
            "nav": self._nav(signed, current),
            "signed": signed,
            "csrf": signed.row.csrf_token if signed else "",
            "sign_out_url": f"{self.prefix}/sign-out",
            "layout": self.layout,
            **(context or {}),
        }
        return self.site.render(
            request, template, values, status_code=status_code, cache_seconds=0, headers=headers
        )

    def js_text(self, request: Request) -> dict[str, str]:
        """The messages the page's script shows, in the visitor's language."""
        lang = web.choose_language(request).lang
        default = self.messages.get(web.DEFAULT_LANGUAGE, {})
        own = {key: web.MESSAGES.text(lang, key) for key in default if key.startswith(self.js_prefix)}
        # Refusals are shown from their codes and problem types, translated like every other word.
        return own | web.MESSAGES.with_prefixes(lang, JS_SHARED_PREFIXES)

    # ---- signing in and out ----------------------------------------------------------------

    def sign_in_page(
        self,
        request: Request,
        *,
        error: str | None = None,
        identifier: str = "",
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        token = web_session.form_token(request)
        response = self.page(
            request,
            "console_signin.html",
            None,
            context={
                "form": self.sign_in_form,
                "form_token": token,
                "action": f"{self.prefix}/sign-in",
                "id_value": identifier,
                "error": error,
            },
            status_code=status_code,
            headers=headers,
        )
        web_session.remember_form_token(response, request, token)
        return response

    async def sign_in(
        self,
        request: Request,
        session: AsyncSession,
        runtime: Runtime,
        pace: Pace,
        *,
        identifier: str,
        secret: str,
        csrf_token: str,
        authenticate: Authenticate,
    ) -> Response:
        """Check the code and secret (throttled like the token endpoints) and open a session.

        A wrong secret is answered with the page (the transaction commits), so `authenticate`
        counts the failure in the request's own transaction.
        """
        web_session.check_form_token(request, csrf_token)
        code = identifier.strip().upper()
        t = web.MESSAGES.translator(web.choose_language(request).lang)
        try:
            principal = await authenticate(session, runtime, code, secret, client_address(request), pace)
        except Throttled as exc:
            return self.sign_in_page(
                request,
                error=t(self.sign_in_form.throttled),
                identifier=code,
                status_code=429,
                headers=exc.headers,
            )
        except Unauthorized:
            return self.sign_in_page(
                request, error=t(self.sign_in_form.wrong), identifier=code, status_code=401
            )
        return await web_session.start_console_session(
            session,
            runtime.settings,
            request,
            kind=self.kind,
            principal=principal,
            redirect_to=self.after_sign_in,
        )

    async def sign_out(
        self, request: Request, session: AsyncSession, signed: Signed[ClientT] | None, csrf_token: str
    ) -> Response:
        """End the session; the cookie opens nothing afterwards."""
        if signed is not None:
            web_session.check_csrf(request, signed.row, csrf_token)
            await web_session.end_session(session, signed.row)
        return self.to_sign_in(request)
