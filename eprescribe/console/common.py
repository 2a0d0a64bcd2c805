"""What every page of the prescriber console shares: the console, the desk of a request, words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import service as registry
from eprescribe.registry.exceptions import PrescriberNotAllowed
from eprescribe.registry.schemas import FacilityRecord, PrescriberRecord
from kit import web, web_session
from kit.console import Console, NavItem, Signed, SignInForm
from kit.database import SessionDep
from kit.runtime import Runtime
from kit.security import ClientKind, Principal
from kit.throttle import Pace
from kit.web_session import SessionKind

PACKAGE = Path(__file__).parent
PREFIX = "/console/prescriber"
MESSAGES = web.load_messages(PACKAGE / "messages.json")
web.register_static("console", PACKAGE / "static")


async def authenticate(
    session: AsyncSession, runtime: Runtime, code: str, secret: str, address: str, pace: Pace
) -> Principal:
    return await registry.authenticate(
        session,
        runtime,
        ClientKind.FACILITY,
        code,
        secret,
        address=address,
        pace=pace,
        answered_with_page=True,
    )


console: Console[FacilityRecord] = Console(
    prefix=PREFIX,
    kind=SessionKind.PRESCRIBER,
    site=web.Site(PACKAGE / "templates"),
    messages=MESSAGES,
    js_prefix="console.js.",
    nav=[
        NavItem("desk", "", "console.nav.desk"),
        NavItem("patients", "/patients", "console.nav.patients"),
        NavItem("prescribers", "/prescribers", "console.nav.prescribers"),
        NavItem("enrol", "/enrol", "console.nav.enrol"),
    ],
    sign_in_form=SignInForm(
        heading="console.signin.title",
        intro="console.signin.intro",
        id_label="console.signin.facility_code",
        id_name="facility_code",
        id_hint="console.signin.facility_code.hint",
        id_max_length=16,
        credential_label="console.signin.secret",
        submit="console.signin.submit",
        wrong="console.signin.wrong",
        throttled="console.signin.throttled",
    ),
    load_client=registry.current_facility,
    after_sign_in=f"{PREFIX}/prescribers",
    layout="console_base.html",
)


@dataclass
class Desk:
    """A signed-in prescriber console: its session, facility and (once picked) prescriber."""

    signed: Signed[FacilityRecord]
    prescriber: PrescriberRecord | None

    @property
    def facility(self) -> FacilityRecord:
        return self.signed.client


async def _desk(
    request: Request,
    session: SessionDep,
    signed: Annotated[Signed[FacilityRecord] | None, Depends(console.current)],
) -> Desk | None:
    if signed is None:
        return None
    prescriber = None
    if signed.row.prescriber_id:
        try:
            prescriber = await registry.active_prescriber_at(
                session, signed.client.facility_code, signed.row.prescriber_id
            )
        except PrescriberNotAllowed:
            await web_session.choose_prescriber(session, signed.row, None)
    return Desk(signed, prescriber)


DeskDep = Annotated[Desk | None, Depends(_desk)]


def require(desk: Desk | None) -> Desk:
    """The signed-in desk of a script's request, or 401 (its session has ended)."""
    console.require(desk.signed if desk else None)
    assert desk is not None
    return desk


def page(
    request: Request,
    template: str,
    desk: Desk | None,
    current: str = "",
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    return console.page(
        request,
        template,
        desk.signed if desk else None,
        current,
        {"desk": desk, **(context or {})},
        status_code=status_code,
    )


def words(request: Request) -> Callable[..., str]:
    """The message catalogue in the visitor's language."""
    return web.MESSAGES.translator(web.choose_language(request).lang)
