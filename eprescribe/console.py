"""The prescriber console: sign in as a facility, pick the prescriber, prescribe and sign in the browser.

The private key never reaches the server: the page creates a non-extractable ECDSA P-256 key
with WebCrypto, keeps it in IndexedDB and signs the compact JWS itself. The server only checks
the session and the CSRF token, then hands the JWS to `submit_prescription` with the session's
facility, so the same rules and the same audit log apply as for a hospital system.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from eprescribe import qr
from eprescribe import service as registry
from eprescribe.exceptions import PrescriberNotAllowed
from eprescribe.models import Facility, Prescriber, PrescriptionKind
from eprescribe.policy import POLICY, age_in_months, chronic_conditions
from eprescribe.schemas import VIETNAM_TIME, PrescriptionSubmit
from erx import web, web_session
from erx.database import SessionDep
from erx.errors import Throttled, Unauthorized
from erx.runtime import RuntimeDep, client_address
from erx.security import ClientKind
from erx.text import fold
from erx.throttle import PaceDep
from erx.web_session import SessionKind, WebSession

PACKAGE = Path(__file__).parent
PREFIX = "/console/prescriber"
TEMPLATES = PACKAGE / "templates" / "console"
# {language: {key: text}}; the patient view's texts live here too (same templates directory).
MESSAGES: dict[str, dict[str, str]] = json.loads((TEMPLATES / "messages.json").read_text(encoding="utf-8"))
web.MESSAGES.add(MESSAGES)
web.register_static("console", PACKAGE / "static" / "console")
site = web.Site(TEMPLATES)

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)

RECENT_LIMIT = 20
ICD10_LIMIT = 20
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*\?>\s*")
_WORD_SPLIT = re.compile(r"[\s,;:()\[\]/-]+")


# ---- reference data served to the page ----------------------------------------------------


@dataclass(frozen=True)
class Icd10:
    code: str
    name_vi: str
    name_en: str
    words: tuple[str, ...]

    def has_words_starting(self, terms: list[str]) -> bool:
        return all(any(word.startswith(term) for word in self.words) for term in terms)


@cache
def icd10_list() -> list[Icd10]:
    """Read the shipped ICD-10 list once, folded for diacritic-blind search."""
    source = resources.files("eprescribe") / "data" / "icd10.csv"
    rows = csv.DictReader(io.StringIO(source.read_text(encoding="utf-8-sig")))
    return [
        Icd10(
            r["icd10"].strip().upper(),
            r["name_vi"],
            r["name_en"],
            tuple(_WORD_SPLIT.split(fold(f"{r['icd10']} {r['name_vi']} {r['name_en']}"))),
        )
        for r in rows
    ]


def search_icd10(q: str, limit: int = ICD10_LIMIT) -> list[Icd10]:
    """Find codes starting with `q`, then names with a word starting with each folded word of `q`."""
    terms = [t for t in _WORD_SPLIT.split(fold(q)) if t]
    if not terms:
        return []
    head = q.strip().upper()
    by_code = [d for d in icd10_list() if d.code.startswith(head)]
    by_words = [d for d in icd10_list() if d not in by_code and d.has_words_starting(terms)]
    return (by_code + by_words)[:limit]


def kind_of_category() -> dict[str, str]:
    """Map catalogue category to prescription kind (traditional gives `y`; `t` is chosen by hand)."""
    found: dict[str, str] = {}
    for kind, categories in POLICY.kind_categories.items():
        if kind == PrescriptionKind.DECOCTION:
            continue
        for category in categories:
            found[str(category)] = str(kind)
    return found


def policy_json() -> dict[str, Any]:
    """Give the policy table and the chronic list to the page's script (no copies in JS)."""
    return {
        "collection_days": POLICY.collection_window.days,
        "max_days_supply": POLICY.max_days_supply,
        "max_days_supply_chronic": POLICY.max_days_supply_chronic,
        "narcotic_max_days_acute": POLICY.narcotic_max_days_acute,
        "narcotic_max_days_per_round": POLICY.narcotic_max_days_per_round,
        "psychotropic_max_days_acute": POLICY.psychotropic_max_days_acute,
        "psychotropic_max_days_long_term": POLICY.psychotropic_max_days_long_term,
        "guardian_required_under_months": POLICY.guardian_required_under_months,
        "cancer_icd10_prefixes": list(POLICY.cancer_icd10_prefixes),
        "hiv_icd10_blocks": list(POLICY.hiv_icd10_blocks),
        "controlled_kinds": sorted(str(k) for k in POLICY.controlled_kinds),
        "kind_of_category": kind_of_category(),
        "chronic_icd10": sorted(chronic_conditions().entries),
    }


# Read the reference files now, at startup, so no request waits on file IO for them.
icd10_list()
chronic_conditions()


# ---- the session of a request --------------------------------------------------------------


@dataclass
class Desk:
    """A signed-in prescriber console: its session, facility and (once picked) prescriber."""

    row: WebSession
    facility: Facility
    prescriber: Prescriber | None


async def _desk(request: Request, session: SessionDep, runtime: RuntimeDep) -> Desk | None:
    row = await web_session.find_session(
        session, runtime.settings, web_session.session_cookie(request), SessionKind.PRESCRIBER
    )
    if row is None:
        return None
    try:
        # Re-checked on every request: a suspended or re-keyed facility is out at once.
        client = await registry.current_client(session, web_session.principal_of(row))
    except Unauthorized:
        await web_session.end_session(session, row)
        return None
    assert isinstance(client, Facility)
    prescriber = None
    if row.prescriber_id:
        try:
            prescriber = await registry.console_prescriber(session, client, row.prescriber_id)
        except PrescriberNotAllowed:
            await web_session.choose_prescriber(session, row, None)
    return Desk(row, client, prescriber)


DeskDep = Annotated[Desk | None, Depends(_desk)]


def _require(desk: Desk | None) -> Desk:
    if desk is None:
        raise Unauthorized("Your console session has ended; sign in again")
    return desk


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _to_sign_in(request: Request) -> RedirectResponse:
    response = _redirect(f"{PREFIX}/sign-in")
    if web_session.session_cookie(request):
        web_session.clear_session_cookie(response, request)
    return response


def _nav(desk: Desk | None, current: str) -> list[dict[str, Any]]:
    if desk is None:
        return []
    items = [
        ("desk", PREFIX, "console.nav.desk"),
        ("prescribers", f"{PREFIX}/prescribers", "console.nav.prescribers"),
        ("enrol", f"{PREFIX}/enrol", "console.nav.enrol"),
    ]
    return [{"href": href, "label": label, "current": key == current} for key, href, label in items]


def _page(
    request: Request,
    template: str,
    desk: Desk | None,
    current: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "brand_key": "console.brand",
        "home": PREFIX,
        "nav": _nav(desk, current),
        "desk": desk,
        "csrf": desk.row.csrf_token if desk else "",
        "sign_out_url": f"{PREFIX}/sign-out",
        **(context or {}),
    }
    return site.render(request, template, values, status_code=status_code, cache_seconds=0, headers=headers)


# ---- signing in ----------------------------------------------------------------------------


def _sign_in_page(
    request: Request,
    *,
    error: str | None = None,
    facility_code: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = web_session.form_token(request)
    response = _page(
        request,
        "signin.html",
        None,
        "",
        {
            "form_token": token,
            "action": f"{PREFIX}/sign-in",
            "heading": "console.signin.title",
            "intro": "console.signin.intro",
            "id_label": "console.signin.facility_code",
            "id_name": "facility_code",
            "id_value": facility_code,
            "id_hint": "console.signin.facility_code.hint",
            "error": error,
        },
        status_code=status_code,
        headers=headers,
    )
    web_session.remember_form_token(response, request, token)
    return response


@router.get(PREFIX)
async def desk_page(request: Request, desk: DeskDep, session: SessionDep) -> Response:
    """Show the prescription form and the prescriber's recent prescriptions."""
    if desk is None:
        return _to_sign_in(request)
    if desk.prescriber is None:
        return _redirect(f"{PREFIX}/prescribers")
    recent = await _recent(session, desk)
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
        {"page": context, "policy": policy_json(), "recent": recent, "js_text": _js_text(request)},
    )


@router.get(f"{PREFIX}/sign-in")
async def sign_in_page(request: Request, desk: DeskDep) -> Response:
    """Show the facility's sign-in form."""
    if desk is not None:
        return _redirect(PREFIX)
    return _sign_in_page(request)


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
    web_session.check_form_token(request, csrf_token)
    code = facility_code.strip().upper()
    t = web.MESSAGES.translator(web.choose_language(request).lang)
    try:
        outcome = await web_session.sign_in(
            session,
            runtime,
            kind=ClientKind.FACILITY,
            client_id=code,
            secret=secret,
            address=client_address(request),
            pace=pace,
        )
    except Throttled as exc:
        return _sign_in_page(
            request,
            error=t("console.signin.throttled"),
            facility_code=code,
            status_code=429,
            headers=exc.headers,
        )
    if outcome.principal is None:
        return _sign_in_page(request, error=t("console.signin.wrong"), facility_code=code, status_code=401)
    return await web_session.start_console_session(
        session,
        runtime.settings,
        request,
        kind=SessionKind.PRESCRIBER,
        principal=outcome.principal,
        redirect_to=f"{PREFIX}/prescribers",
    )


@router.post(f"{PREFIX}/sign-out")
async def sign_out(
    request: Request,
    desk: DeskDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """End the session; the cookie opens nothing afterwards."""
    if desk is not None:
        web_session.check_csrf(request, desk.row, csrf_token)
        await web_session.end_session(session, desk.row)
    return _to_sign_in(request)


# ---- choosing the prescriber -----------------------------------------------------------------


@router.get(f"{PREFIX}/prescribers")
async def prescribers_page(request: Request, desk: DeskDep, session: SessionDep) -> Response:
    """List the facility's active prescribers, to choose who is prescribing."""
    if desk is None:
        return _to_sign_in(request)
    everyone = await registry.prescribers_at_facility(session, desk.facility)
    active = [p for p in everyone if p.status == "active"]
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
        return _to_sign_in(request)
    web_session.check_csrf(request, desk.row, csrf_token)
    prescriber = await registry.console_prescriber(session, desk.facility, prescriber_id)
    await web_session.choose_prescriber(session, desk.row, prescriber.prescriber_id)
    return _redirect(PREFIX)


# ---- key enrolment -------------------------------------------------------------------------


@router.get(f"{PREFIX}/enrol")
async def enrol_page(request: Request, desk: DeskDep) -> Response:
    """Create a signing key in this browser and show its public JWK for the health department."""
    if desk is None:
        return _to_sign_in(request)
    registered = (
        {k: desk.prescriber.public_jwk.get(k) for k in ("kty", "crv", "x", "y")} if desk.prescriber else None
    )
    return _page(
        request,
        "enrol.html",
        desk,
        "enrol",
        {
            "page": {
                "registered_jwk": registered,
                "prescriber_id": desk.prescriber.prescriber_id if desk.prescriber else None,
            },
            "js_text": _js_text(request),
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
    web_session.check_csrf(request, found.row)
    if found.prescriber is None:
        raise PrescriberNotAllowed("Choose the prescriber first")
    outcome = await registry.submit_prescription(
        session,
        runtime,
        facility=found.facility,
        compact_jws=body.jws,
        idempotency_key=idempotency_key,
        base_url=str(request.base_url),
    )
    answer = dict(outcome.body)
    if "code" in answer:
        answer["print_url"] = f"{PREFIX}/prescriptions/{answer['code']}"
    return JSONResponse(answer, status_code=outcome.status_code)


async def _recent(session: SessionDep, desk: Desk) -> list[dict[str, Any]]:
    assert desk.prescriber is not None
    found = await registry.recent_for_prescriber(
        session, desk.facility, desk.prescriber.prescriber_id, RECENT_LIMIT
    )
    return [
        {
            "code": p.code,
            "kind": p.kind,
            "patient": p.patient_full_name,
            "issued_at": p.issued_at,
            "valid_until": p.valid_until,
            "status": registry.effective_status(p),
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
    return site.render(request, "_recent.html", {"recent": await _recent(session, found)}, cache_seconds=0)


def _inline_svg(data: bytes) -> Markup:
    # Generated by the qrcode library from our own text: markup we made, safe to inline.
    return Markup(_XML_DECLARATION.sub("", data.decode("utf-8")))  # noqa: S704


@router.get(f"{PREFIX}/prescriptions/{{code}}")
async def print_page(request: Request, code: str, desk: DeskDep, session: SessionDep) -> Response:
    """Render the A5 paper prescription: QR code, the code in large type, and every line."""
    if desk is None:
        return _to_sign_in(request)
    record = await registry.read_for_facility(
        session, desk.facility, code, action="console_print", address=client_address(request)
    )
    svg = await asyncio.to_thread(qr.svg, record.prescription.qr_text)
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
    return age_in_months(born, at.astimezone(VIETNAM_TIME).date())


# ---- public helpers of the form -------------------------------------------------------------


@router.get("/console/api/icd10")
async def icd10(q: Annotated[str, Query(max_length=100)] = "") -> JSONResponse:
    """Search ICD-10 by code or by name, with or without diacritics (public, cacheable)."""
    chronic = chronic_conditions()
    found = await asyncio.to_thread(search_icd10, q) if q.strip() else []
    return JSONResponse(
        {
            "items": [
                {
                    "code": d.code,
                    "name_vi": d.name_vi,
                    "name_en": d.name_en,
                    "chronic": chronic.covers(d.code),
                }
                for d in found
            ]
        },
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/console/api/policy")
async def policy() -> JSONResponse:
    """Serve the prescribing limits and the chronic list the form checks as the prescriber types."""
    return JSONResponse(policy_json(), headers={"Cache-Control": "public, max-age=3600"})


def _js_text(request: Request) -> dict[str, str]:
    """Collect the messages the page's script shows, in the visitor's language."""
    lang = web.choose_language(request).lang
    return {key: web.MESSAGES.text(lang, key) for key in MESSAGES["vi"] if key.startswith("console.js.")}
