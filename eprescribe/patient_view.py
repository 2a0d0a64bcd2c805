"""The patient's own view of a prescription: `/rx/{code}`, opened with the date of birth.

The code and the date of birth together are the secret. Wrong answers are throttled per code
and per address; every attempt and every read is written to the access log as a "patient"
entry, and the page shows that log back: who looked, and when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe import codes
from eprescribe import service as registry
from eprescribe.console import site
from eprescribe.models import Prescription
from eprescribe.schemas import VIETNAM_TIME
from erx import throttle, web, web_session
from erx.audit import AccessLogEntry
from erx.database import SessionDep
from erx.runtime import RuntimeDep, client_address
from erx.settings import Settings
from erx.throttle import PaceDep
from erx.web_session import SessionKind
from pharmacy_gateway import service as gateway
from price_portal import service as prices

router = APIRouter(include_in_schema=False)

OFFERS_LIMIT = 10
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def _subjects(settings: Settings, code: str, address: str) -> list[throttle.Subject]:
    """Count wrong dates of birth per prescription code and, with wider limits, per address."""
    factor = max(1, settings.throttle_address_factor)
    return [
        throttle.Subject(
            ("rx:" + code.strip().upper())[: throttle.MAX_KEY_LENGTH],
            settings.patient_view_free_failures,
            settings.patient_view_block_failures,
        ),
        throttle.Subject(
            throttle.address_key(address),
            settings.throttle_free_failures * factor,
            settings.throttle_block_failures * factor,
        ),
    ]


def parse_birth_date(text: str) -> date | None:
    """Read `YYYY-MM-DD` (the date picker) or `DD/MM/YYYY` (typed the Vietnamese way)."""
    text = text.strip()
    try:
        match = _DAY_FIRST.match(text)
        if match:
            return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        return date.fromisoformat(text)
    except ValueError:
        return None


def _url(code: str) -> str:
    return f"/rx/{code}"


def _translator(request: Request) -> Any:
    return web.MESSAGES.translator(web.choose_language(request).lang)


def _ask_page(
    request: Request,
    code: str,
    *,
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = web_session.form_token(request)
    response = site.render(
        request,
        "patient_ask.html",
        {
            "brand_key": "rx.brand",
            "home": _url(code),
            "nav": [],
            "csrf": "",
            "sign_out_url": "",
            "code": code,
            "action": _url(code),
            "form_token": token,
            "error": error,
        },
        status_code=status_code,
        cache_seconds=0,
        headers=headers,
    )
    web_session.remember_form_token(response, request, token)
    return response


@router.post("/rx/{code}")
async def answer(
    code: str,
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    date_of_birth: Annotated[str, Form(max_length=20)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the date of birth; a right answer opens a short patient session for this code only."""
    web_session.check_form_token(request, csrf_token)
    t = _translator(request)
    shown = codes.canonical(code) or code.strip()
    settings = runtime.settings
    address = client_address(request)
    keys = _subjects(settings, shown, address)
    found = await throttle.verdict(session, settings, keys)
    if found.blocked:
        refused = throttle.refuse(found)
        return _ask_page(
            request, shown, error=t("rx.ask.throttled"), status_code=429, headers=refused.headers
        )
    if found.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    born = parse_birth_date(date_of_birth)
    if born is None:
        return _ask_page(request, shown, error=t("rx.ask.bad_date"), status_code=422)
    prescription = await registry.open_for_patient(session, shown, born, address=address)
    if prescription is None:
        # Counted in this request's transaction: the page answers, so nothing rolls back.
        await throttle.count_failure(session, settings, keys)
        return _ask_page(request, shown, error=t("rx.ask.wrong"), status_code=401)
    await web_session.end_raw(session, web_session.session_cookie(request))
    await web_session.purge_expired(session)
    raw, _ = await web_session.open_session(
        session, settings, kind=SessionKind.PATIENT, client_id=prescription.code
    )
    response = RedirectResponse(_url(prescription.code), status_code=303)
    web_session.set_session_cookie(response, request, raw)
    return response


@router.post("/rx/{code}/sign-out")
async def sign_out(
    code: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Close the patient's session (a shared phone or computer)."""
    row = await web_session.find_session(
        session, runtime.settings, web_session.session_cookie(request), SessionKind.PATIENT
    )
    if row is not None:
        web_session.check_csrf(request, row, csrf_token)
        await web_session.end_session(session, row)
    response = RedirectResponse(_url(codes.canonical(code) or code.strip()), status_code=303)
    web_session.clear_session_cookie(response, request)
    return response


# ---- the view ----------------------------------------------------------------------------------


@dataclass
class LogLine:
    at: datetime
    who: str
    actor_kind: str
    kind_label: str
    action: str


REFUSED_SUFFIXES = ("_denied", "_throttled", "_not_found")


def _refused_label(lang: str, action: str) -> str:
    """Label a denied, throttled or missed variant of a known action as that action, refused."""
    for suffix in REFUSED_SUFFIXES:
        base = action.removesuffix(suffix)
        known = web.MESSAGES.text(lang, f"rx.action.{base}")
        if base != action and known != f"rx.action.{base}":
            return f"{known} ({web.MESSAGES.text(lang, 'rx.action.refused')})"
    return action


def _log_lines(
    request: Request, entries: list[AccessLogEntry], names: dict[tuple[str, str], str]
) -> list[LogLine]:
    lang = web.choose_language(request).lang
    lines = []
    for entry in reversed(entries):
        key = f"rx.action.{entry.action}"
        action = web.MESSAGES.text(lang, key)
        if action == key:
            action = _refused_label(lang, entry.action)
        if entry.actor_kind == registry.PATIENT_ACTOR:
            who = web.MESSAGES.text(lang, "rx.actor.patient")
        elif entry.actor_kind == "admin":
            who = web.MESSAGES.text(lang, "rx.actor.admin")
        else:
            who = names.get((entry.actor_kind, entry.actor_code), entry.actor_code)
        kind_key = f"rx.actor_kind.{entry.actor_kind}"
        kind = web.MESSAGES.text(lang, kind_key)
        lines.append(
            LogLine(entry.at, who, entry.actor_kind, entry.actor_kind if kind == kind_key else kind, action)
        )
    return lines


async def _basket(
    session: AsyncSession, record: registry.PrescriptionRecord, province: str
) -> tuple[list[prices.BasketOffer], int]:
    open_items = [item for item in record.items if item.remaining > 0]
    products = await registry.substitutes_for_lines(session, open_items)
    lines = [
        prices.BasketLine([d.id for d in products[item.line_no] if d.id is not None], item.remaining)
        for item in open_items
    ]
    if not lines:
        return [], 0
    return await prices.basket_offers(session, lines, province=province, limit=OFFERS_LIMIT), len(lines)


async def _default_province(session: AsyncSession, prescription: Prescription) -> str:
    facility = await registry.get_facility(session, prescription.facility_code)
    return facility.province_code if facility else prescription.facility_code[:2]


@router.get("/rx/{code}")
async def view(
    code: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
) -> Response:
    """Show the prescription, what was dispensed where, who looked, and where the rest costs least."""
    canonical = codes.canonical(code)
    row = await web_session.find_session(
        session, runtime.settings, web_session.session_cookie(request), SessionKind.PATIENT
    )
    if canonical is None or row is None or row.client_id != canonical:
        return _ask_page(request, canonical or code.strip())
    record = await registry.read_for_patient(
        session, canonical, action="patient_view", address=client_address(request)
    )
    if record is None:
        return _ask_page(request, canonical)
    p = record.prescription
    dispenses = await gateway.dispenses_for_patient(session, p)
    numbers = sorted({line.registration_no for d in dispenses for line in d.lines})
    products = await registry.drugs_by_registration_numbers(session, numbers)
    entries = await registry.access_entries(session, p)
    names = await registry.actor_names(session, entries)
    provinces = prices.provinces()
    chosen = province if province in provinces else await _default_province(session, p)
    offers, basket_lines = await _basket(session, record, chosen)
    lang = web.choose_language(request).lang
    return site.render(
        request,
        "patient_view.html",
        {
            "brand_key": "rx.brand",
            "home": _url(canonical),
            "nav": [],
            "csrf": row.csrf_token,
            "sign_out_url": f"{_url(canonical)}/sign-out",
            "record": record,
            "p": p,
            "dispenses": dispenses,
            "product_names": {number: drug.name for number, drug in products.items()},
            "log": _log_lines(request, entries, names),
            "offers": offers,
            "basket_lines": basket_lines,
            "province": chosen,
            "provinces": sorted(provinces.values(), key=lambda pr: pr.name(lang)),
            "province_name": provinces[chosen].name(lang) if chosen in provinces else chosen,
            "vn": VIETNAM_TIME,
        },
        cache_seconds=0,
    )
