"""The patient's own view of a prescription: `/rx/{code}`, opened with its key and date of birth.

A pharmacy's lookup shows the birth year, so the code and the date of birth are no secret from
a pharmacy: the page also asks for the access key printed only on the patient's paper (in the
link of its patient QR). Wrong keys are throttled per code and per address; wrong dates of birth
with the right key have a counter of their own, so a stranger cannot lock the patient out.
The page shows what the patient needs (no diagnoses, the name as initials); every attempt and
every read is written to the access log as a "patient" entry, and the page shows that log back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.prescriptions import service as prescriptions
from eprescribe.prescriptions.schemas import PrescriptionRecord
from eprescribe.registry import service as registry
from kit import audit, throttle, web, web_session
from kit.audit import AccessAction, AccessLogEntry, ActorKind, Refusal
from kit.database import SessionDep
from kit.headers import no_referrer_under
from kit.runtime import RuntimeDep, client_address
from kit.settings import Settings
from kit.throttle import PaceDep
from kit.time import parse_day, utcnow
from kit.web_session import SessionKind
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.prices import service as prices
from pharmacy_gateway.prices.schemas import BasketLine
from price_portal.patient_view.schemas import BasketOffer

PACKAGE = Path(__file__).parent
web.load_messages(PACKAGE / "messages.json")
site = web.Site(PACKAGE / "templates")

router = APIRouter(include_in_schema=False)
# The paper's link carries the access key (`/rx/{code}?k=`): no page here passes its address on.
no_referrer_under("/rx")

OFFERS_LIMIT = 10


def _key_subjects(settings: Settings, code: str, address: str) -> list[throttle.Subject]:
    """Wrong access keys: per prescription code from every address, and per address."""
    factor = max(1, settings.throttle_address_factor)
    return [
        throttle.Subject(
            ("rx:" + code)[: throttle.MAX_KEY_LENGTH],
            settings.patient_view_free_failures,
            settings.patient_view_block_failures,
            settings.throttle_window_seconds,
        ),
        throttle.Subject(
            throttle.address_key(address),
            settings.throttle_free_failures * factor,
            settings.throttle_block_failures * factor,
            settings.throttle_window_seconds,
        ),
    ]


def _birth_subjects(settings: Settings, code: str) -> list[throttle.Subject]:
    """Wrong dates of birth with the right key: only a holder of the paper can spend these."""
    return [
        throttle.Subject(
            ("rxk:" + code)[: throttle.MAX_KEY_LENGTH],
            settings.patient_view_free_failures,
            settings.patient_view_block_failures,
            settings.patient_view_window_seconds,
        )
    ]


def _url(code: str) -> str:
    return f"/rx/{code}"


def _page(
    request: Request, template: str, code: str, csrf: str, context: dict[str, Any], **options: Any
) -> HTMLResponse:
    values = {
        "home": _url(code),
        "nav": [],
        "csrf": csrf,
        "sign_out_url": f"{_url(code)}/sign-out",
        **context,
    }
    return site.render(request, template, values, cache_seconds=0, **options)


def _ask_page(
    request: Request,
    code: str,
    *,
    key: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = web_session.form_token(request)
    response = _page(
        request,
        "patient_ask.html",
        code,
        "",
        {
            "code": code,
            "action": _url(code),
            "form_token": token,
            "error": error,
            # From the paper's link: carried in the form, not shown.
            "access_key": key,
            "key_length": prescriptions.ACCESS_KEY_LENGTH + 2,
        },
        status_code=status_code,
        headers=headers,
    )
    web_session.remember_form_token(response, request, token)
    return response


def _linked_key(text: str | None) -> str:
    """The key a link carried, if it looks like one (anything else is dropped, never echoed)."""
    cleaned = "".join(ch for ch in (text or "").upper() if ch.isalnum())
    return cleaned if len(cleaned) == prescriptions.ACCESS_KEY_LENGTH and cleaned.isalnum() else ""


def code_in(text: str) -> str | None:
    """The prescription code in what a patient typed or pasted: the code, the QR text or the link."""
    text = text.strip().split("?", 1)[0].rstrip("/")
    return prescriptions.code_from_scanned(text.rsplit("/", 1)[-1]) if text else None


def key_in(text: str) -> str:
    """The access key a pasted link carries (`?k=`), if any."""
    query = text.strip().split("?", 1)[1] if "?" in text else ""
    pairs = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    return _linked_key(pairs.get("k"))


@router.get("/rx")
async def open_page(request: Request, code: Annotated[str | None, Query(max_length=4000)] = None) -> Response:
    """Ask for the code printed on the prescription, then open that prescription's page."""
    error = None
    if code is not None:
        found = code_in(code)
        if found is not None:
            key = key_in(code)
            return RedirectResponse(_url(found) + (f"?k={key}" if key else ""), status_code=303)
        error = web.MESSAGES.text(web.choose_language(request).lang, "rx.open.bad_code")
    return site.render(
        request,
        "patient_open.html",
        {"home": "/rx", "nav": [], "csrf": "", "sign_out_url": "", "error": error, "typed": code or ""},
        status_code=422 if error else 200,
        cache_seconds=0 if error or code else 300,
    )


@router.post("/rx/{code}")
async def answer(
    code: str,
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    date_of_birth: Annotated[str, Form(max_length=20)],
    access_key: Annotated[str, Form(max_length=40)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the access key and the full date of birth; right, they open a session for this code.

    A wrong key is counted per code (from any address) and per address; it never counts
    against the holder of the right key, whose wrong dates of birth have a counter of their
    own: a stranger cannot lock the patient out, and changing address gains a guesser nothing.
    Every failure gets the same answer, whichever part was wrong.
    """
    web_session.check_form_token(request, csrf_token)
    t = web.MESSAGES.translator(web.choose_language(request).lang)
    canonical = prescriptions.canonical_code(code)
    shown = canonical or code.strip()[:20]
    settings = runtime.settings
    address = client_address(request)
    kept_key = _linked_key(access_key)
    # Typed the Vietnamese way (20/06/1985) or as the ISO day some browsers' date pickers send.
    born = parse_day(date_of_birth)
    if born is None:
        return _ask_page(request, shown, key=kept_key, error=t("rx.ask.bad_date"), status_code=422)
    if canonical is None or not prescriptions.access_key_matches(runtime.keyring, canonical, access_key):
        # Nothing to check beyond the key: count it (the page answers, so the count commits).
        pace.slow_down(settings.throttle_delay_seconds)
        found = await throttle.count_failure(session, _key_subjects(settings, shown, address))
        if canonical is not None:
            await audit.record_access(
                session,
                prescription_code=canonical,
                actor_kind=ActorKind.PATIENT,
                actor_code=ActorKind.PATIENT.value,
                action=audit.refused(AccessAction.PATIENT_SIGN_IN, Refusal.DENIED),
                client_address=address,
            )
        if found.blocked:
            throttle.refuse(found)
            return _ask_page(
                request,
                shown,
                error=t("rx.ask.throttled"),
                status_code=429,
                headers={"Retry-After": str(found.retry_after)},
            )
        return _ask_page(request, shown, error=t("rx.ask.wrong"), status_code=401)
    subjects = _birth_subjects(settings, canonical)
    taken, _ = await throttle.take(session, subjects)
    if taken.blocked:
        throttle.refuse(taken)
        return _ask_page(
            request,
            shown,
            key=kept_key,
            error=t("rx.ask.throttled"),
            status_code=429,
            headers={"Retry-After": str(taken.retry_after)},
        )
    opened = await prescriptions.open_for_patient(session, canonical, born, address=address)
    if opened is None:
        pace.slow_down(settings.throttle_delay_seconds)
        return _ask_page(request, shown, key=kept_key, error=t("rx.ask.wrong"), status_code=401)
    await throttle.give_back(session, subjects, known=None, known_seconds=0)
    await web_session.end_raw(session, web_session.session_cookie(request))
    await web_session.purge_expired(session)
    raw, _ = await web_session.open_session(
        session, settings, kind=SessionKind.PATIENT, client_id=opened.code
    )
    response = RedirectResponse(_url(opened.code), status_code=303)
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
    response = RedirectResponse(_url(prescriptions.canonical_code(code) or code.strip()), status_code=303)
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


def _action_label(lang: str, action: str) -> str:
    """Label an action; a denied, throttled or missed variant reads as that action, refused."""
    known = web.MESSAGES.text(lang, f"rx.action.{action}")
    if known != f"rx.action.{action}":
        return known
    for why in Refusal:
        base = action.removesuffix(f"_{why.value}")
        label = web.MESSAGES.text(lang, f"rx.action.{base}")
        if base != action and label != f"rx.action.{base}":
            return f"{label} ({web.MESSAGES.text(lang, 'rx.action.refused')})"
    return action


async def _actor_names(session: AsyncSession, entries: list[AccessLogEntry]) -> dict[tuple[str, str], str]:
    """Name the facilities and pharmacies of an access log, by (actor_kind, actor_code)."""
    facility_codes = sorted({e.actor_code for e in entries if e.actor_kind == ActorKind.FACILITY})
    pharmacy_codes = sorted({e.actor_code for e in entries if e.actor_kind == ActorKind.PHARMACY})
    facilities = await registry.facilities_by_codes(session, facility_codes)
    pharmacies = await registry.pharmacies_by_codes(session, pharmacy_codes)
    names = {(ActorKind.FACILITY.value, code): f.name for code, f in facilities.items()}
    names.update({(ActorKind.PHARMACY.value, code): p.name for code, p in pharmacies.items()})
    return names


def _log_lines(lang: str, entries: list[AccessLogEntry], names: dict[tuple[str, str], str]) -> list[LogLine]:
    lines = []
    for entry in reversed(entries):
        if entry.actor_kind == ActorKind.PATIENT:
            who = web.MESSAGES.text(lang, "rx.actor.patient")
        elif entry.actor_kind == ActorKind.ADMIN:
            who = web.MESSAGES.text(lang, "rx.actor.admin")
        else:
            who = names.get((entry.actor_kind, entry.actor_code), entry.actor_code)
        kind_key = f"rx.actor_kind.{entry.actor_kind}"
        kind = web.MESSAGES.text(lang, kind_key)
        lines.append(
            LogLine(
                entry.at,
                who,
                entry.actor_kind,
                entry.actor_kind if kind == kind_key else kind,
                _action_label(lang, entry.action),
            )
        )
    return lines


async def _basket(
    session: AsyncSession, found: PrescriptionRecord, province: str
) -> tuple[list[BasketOffer], int]:
    """Where the rest of the prescription costs least in a province: every substitute counts."""
    open_lines = [line for line in found.lines if line.remaining > 0]
    if not open_lines:
        return [], 0
    substitutes = await catalogue.substitutes_by_keys(session, [line.key for line in open_lines])
    basket = [BasketLine([p.id for p in substitutes[line.key]], line.remaining) for line in open_lines]
    totals = await prices.basket_totals(session, basket, province=province, limit=OFFERS_LIMIT)
    outlets = await registry.pharmacies_by_ids(session, [t.pharmacy_id for t in totals])
    offers = [
        BasketOffer(outlets[t.pharmacy_id], t.covered, t.total) for t in totals if t.pharmacy_id in outlets
    ]
    return offers, len(open_lines)


@router.get("/rx/{code}")
async def view(
    code: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
    k: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Show the prescription, what was dispensed where, who looked, and where the rest costs least."""
    canonical = prescriptions.canonical_code(code)
    row = await web_session.find_session(
        session, runtime.settings, web_session.session_cookie(request), SessionKind.PATIENT
    )
    if canonical is None or row is None or row.client_id != canonical:
        return _ask_page(request, canonical or code.strip()[:20], key=_linked_key(k))
    found = await prescriptions.read_for_patient(session, canonical, address=client_address(request))
    if found is None:
        return _ask_page(request, canonical)
    dispenses = await dispensing.dispenses_for_patient(session, found.id, code=found.code)
    numbers = sorted({line.registration_no for d in dispenses for line in d.lines})
    products = await catalogue.products_by_registration(session, numbers)
    entries = await prescriptions.access_entries(session, found.code)
    provinces = registry.provinces()
    if province not in provinces:
        facility = await registry.get_facility(session, found.facility_code)
        province = facility.province_code if facility else found.facility_code[:2]
    offers, basket_lines = await _basket(session, found, province)
    lang = web.choose_language(request).lang
    return _page(
        request,
        "patient_view.html",
        canonical,
        row.csrf_token,
        {
            "p": found,
            "initials": dispensing.initials(found.patient.full_name),
            "status": found.status_at(utcnow()),
            "prescriber_name": found.prescriber_name,
            "dispenses": dispenses,
            "product_names": {number: product.name for number, product in products.items()},
            "log": _log_lines(lang, entries, await _actor_names(session, entries)),
            "offers": offers,
            "basket_lines": basket_lines,
            "province": province,
            "provinces": sorted(provinces.values(), key=lambda pr: pr.sort_key(lang)),
            "province_name": provinces[province].name(lang) if province in provinces else province,
        },
    )
