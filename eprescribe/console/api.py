"""The prescriber console: sign in as a facility, pick the prescriber, prescribe and sign in the browser.

The private key never reaches the server: the page creates a non-extractable ECDSA P-256 key
with WebCrypto, keeps it in IndexedDB and signs the compact JWS itself. The server only checks
the session and the CSRF token, then hands the JWS to the same submission as a hospital system's,
so the same rules and the same audit log apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.schemas import PrescriptionSubmit
from eprescribe.registry import service as registry
from eprescribe.registry.exceptions import PrescriberNotAllowed
from eprescribe.registry.schemas import ClientStatus, FacilityRecord, PrescriberRecord
from kit import web, web_session
from kit.audit import AccessAction
from kit.console import Console, NavItem, Signed, SignInForm
from kit.database import SessionDep
from kit.runtime import Runtime, RuntimeDep, client_address
from kit.security import ClientKind, Principal
from kit.throttle import Pace, PaceDep
from kit.time import VIETNAM_TIME
from kit.web_session import SessionKind

PACKAGE = Path(__file__).parent
PREFIX = "/console/prescriber"
MESSAGES = web.load_messages(PACKAGE / "messages.json")
web.register_static("console", PACKAGE / "static")

RECENT_LIMIT = 20
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*\?>\s*")


async def _authenticate(
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

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)


# Read the reference files now, at startup, so no request waits on file IO for them.
prescriptions.load_reference_data()


# ---- the session of a request --------------------------------------------------------------


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


def _require(desk: Desk | None) -> Desk:
    console.require(desk.signed if desk else None)
    assert desk is not None
    return desk


def _page(
    request: Request,
    template: str,
    desk: Desk | None,
    current: str = "",
    context: dict[str, Any] | None = None,
) -> HTMLResponse:
    return console.page(
        request, template, desk.signed if desk else None, current, {"desk": desk, **(context or {})}
    )


# ---- signing in and out ----------------------------------------------------------------------


@router.get(f"{PREFIX}/sign-in")
async def sign_in_page(request: Request, desk: DeskDep) -> Response:
    """Show the facility's sign-in form."""
    if desk is not None:
        return console.redirect(PREFIX)
    return console.sign_in_page(request)


@router.post(f"{PREFIX}/sign-in")
async def sign_in(
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    facility_code: Annotated[str, Form(max_length=16)],
    secret: Annotated[str, Form(max_length=500)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the facility's code and secret (throttled like the token endpoint) and open a session."""
    return await console.sign_in(
        request,
        session,
        runtime,
        pace,
        identifier=facility_code,
        secret=secret,
        csrf_token=csrf_token,
        authenticate=_authenticate,
    )


@router.post(f"{PREFIX}/sign-out")
async def sign_out(
    request: Request,
    desk: DeskDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """End the session; the cookie opens nothing afterwards."""
    return await console.sign_out(request, session, desk.signed if desk else None, csrf_token)


# ---- the desk --------------------------------------------------------------------------------


@router.get(PREFIX)
async def desk_page(request: Request, desk: DeskDep, session: SessionDep) -> Response:
    """Show the prescription form and the prescriber's recent prescriptions."""
    if desk is None:
        return console.to_sign_in(request)
    if desk.prescriber is None:
        return console.redirect(f"{PREFIX}/prescribers")
    prescriber = desk.prescriber
    context = {
        "prescriber_id": prescriber.prescriber_id,
        "full_name": prescriber.full_name,
        "controlled_allowed": prescriber.controlled_allowed,
        "public_jwk": {k: prescriber.public_jwk.get(k) for k in ("kty", "crv", "x", "y")},
        "facility_code": desk.facility.facility_code,
        "submit_url": f"{PREFIX}/api/prescriptions",
        "print_url": f"{PREFIX}/prescriptions/",
        "recent_url": f"{PREFIX}/recent",
        "icd10_url": "/console/api/icd10",
        "drugs_url": "/api/v1/drugs",
        "enrol_url": f"{PREFIX}/enrol",
        "sign_in_url": f"{PREFIX}/sign-in",
    }
    return _page(
        request,
        "prescribe.html",
        desk,
        "desk",
        {
            "page": context,
            "policy": prescriptions.policy_for_forms(),
            "recent": await _recent(session, desk, client_address(request)),
            "js_text": console.js_text(request),
        },
    )


# ---- choosing the prescriber -----------------------------------------------------------------


@router.get(f"{PREFIX}/prescribers")
async def prescribers_page(request: Request, desk: DeskDep, session: SessionDep) -> Response:
    """List the facility's active prescribers, to choose who is prescribing."""
    if desk is None:
        return console.to_sign_in(request)
    everyone = await registry.prescribers_at_facility(session, desk.facility.facility_code)
    active = [p for p in everyone if p.status == ClientStatus.ACTIVE]
    return _page(
        request,
        "prescribers.html",
        desk,
        "prescribers",
        {"prescribers": active, "choose_url": f"{PREFIX}/prescribers", "enrol_url": f"{PREFIX}/enrol"},
    )


@router.post(f"{PREFIX}/prescribers")
async def choose_prescriber(
    request: Request,
    desk: DeskDep,
    session: SessionDep,
    prescriber_id: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Act as one prescriber of the facility from now on (403 for anyone else's id)."""
    if desk is None:
        return console.to_sign_in(request)
    web_session.check_csrf(request, desk.signed.row, csrf_token)
    prescriber = await registry.active_prescriber_at(session, desk.facility.facility_code, prescriber_id)
    await web_session.choose_prescriber(session, desk.signed.row, prescriber.prescriber_id)
    return console.redirect(PREFIX)


# ---- key enrolment -------------------------------------------------------------------------


@router.get(f"{PREFIX}/enrol")
async def enrol_page(request: Request, desk: DeskDep) -> Response:
    """Create a signing key in this browser and show its public JWK for the health department."""
    if desk is None:
        return console.to_sign_in(request)
    prescriber = desk.prescriber
    registered = {k: prescriber.public_jwk.get(k) for k in ("kty", "crv", "x", "y")} if prescriber else None
    return _page(
        request,
        "enrol.html",
        desk,
        "enrol",
        {
            "page": {
                "registered_jwk": registered,
                "prescriber_id": prescriber.prescriber_id if prescriber else None,
            },
            "js_text": console.js_text(request),
        },
    )


# ---- prescribing ---------------------------------------------------------------------------


@router.post(f"{PREFIX}/api/prescriptions")
async def submit(
    body: PrescriptionSubmit,
    request: Request,
    desk: DeskDep,
    session: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> JSONResponse:
    """Submit a JWS signed in the browser, as the session's facility, through the real rules."""
    found = _require(desk)
    web_session.check_csrf(request, found.signed.row)
    if found.prescriber is None:
        raise PrescriberNotAllowed("Choose the prescriber first")
    outcome = await prescriptions.submit(
        session,
        runtime,
        facility=found.facility,
        compact_jws=body.jws,
        idempotency_key=idempotency_key,
        base_url=runtime.settings.public_url,
    )
    answer = dict(outcome.body)
    if "code" in answer:
        answer["print_url"] = f"{PREFIX}/prescriptions/{answer['code']}"
    return JSONResponse(answer, status_code=outcome.status_code)


async def _recent(session: AsyncSession, desk: Desk, address: str) -> list[dict[str, Any]]:
    assert desk.prescriber is not None
    found = await prescriptions.recent_for_prescriber(
        session, desk.facility, desk.prescriber.prescriber_id, RECENT_LIMIT, address=address
    )
    now = datetime.now(VIETNAM_TIME)
    return [
        {
            "code": p.code,
            "kind": p.kind,
            "patient": p.patient.full_name,
            "issued_at": p.issued_at,
            "valid_until": p.valid_until,
            "status": p.status_at(now),
            "url": f"{PREFIX}/prescriptions/{p.code}",
        }
        for p in found
    ]


@router.get(f"{PREFIX}/recent")
async def recent_fragment(request: Request, desk: DeskDep, session: SessionDep) -> HTMLResponse:
    """Render the recent prescriptions with their live status (the desk refreshes this part)."""
    found = _require(desk)
    if found.prescriber is None:
        raise PrescriberNotAllowed("Choose the prescriber first")
    return console.site.render(
        request,
        "_recent.html",
        {"recent": await _recent(session, found, client_address(request))},
        cache_seconds=0,
    )


def _inline_svg(data: bytes) -> Markup:
    # Generated by the qrcode library from our own text: markup we made, safe to inline.
    return Markup(_XML_DECLARATION.sub("", data.decode("utf-8")))  # noqa: S704


@router.get(f"{PREFIX}/prescriptions/{{code}}")
async def print_page(request: Request, code: str, desk: DeskDep, session: SessionDep) -> Response:
    """Render the A5 paper prescription: QR code, the code in large type, and every line."""
    if desk is None:
        return console.to_sign_in(request)
    record = await prescriptions.read_for_facility(
        session, desk.facility, code, action=AccessAction.CONSOLE_PRINT, address=client_address(request)
    )
    svg = await prescriptions.qr_svg(record.prescription.qr_text)
    p = record.prescription
    return _page(
        request,
        "print.html",
        desk,
        "",
        {
            "record": record,
            "p": p,
            "facility": desk.facility,
            "qr_svg": _inline_svg(svg),
            "age_months": _age_months(p.patient_date_of_birth, p.issued_at),
            "issued_on": p.issued_at,
            "valid_on": p.valid_until - timedelta(seconds=1),
        },
    )


def _age_months(born: date, at: datetime) -> int:
    return prescriptions.age_in_months(born, at.astimezone(VIETNAM_TIME).date())


# ---- public helpers of the form -------------------------------------------------------------


@router.get("/console/api/icd10")
async def icd10(q: Annotated[str, Query(max_length=100)] = "") -> JSONResponse:
    """Search ICD-10 by code or by name, with or without diacritics (public, cacheable)."""
    return JSONResponse(
        {"items": await prescriptions.search_diagnoses(q)}, headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/console/api/policy")
async def policy() -> JSONResponse:
    """Serve the prescribing limits and the chronic list the form checks as the prescriber types."""
    return JSONResponse(prescriptions.policy_for_forms(), headers={"Cache-Control": "public, max-age=3600"})
