"""The pharmacist console: sign in with the connection code, scan or type, dispense, void, publish prices.

Everything goes through pharmacy_gateway.service exactly as the gateway API does (the access
log, throttling of unknown codes, idempotent dispensing), with a browser session instead of a
bearer token. Camera frames the browser cannot decode itself are decoded here with zxing-cpp,
in a thread, and never stored.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import zxingcpp
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe import service as registry
from eprescribe.models import Pharmacy
from eprescribe.schemas import VIETNAM_TIME
from erx import web, web_session
from erx.database import SessionDep
from erx.errors import BadRequest, DomainError, InvalidContent, Throttled, Unauthorized
from erx.runtime import RuntimeDep, client_address
from erx.security import ClientKind
from erx.throttle import PaceDep
from erx.web_session import SessionKind, WebSession
from pharmacy_gateway import service as gateway
from pharmacy_gateway.schemas import (
    DispenseCreate,
    DispenseItem,
    DispenseView,
    GatewayPrescription,
    Pharmacist,
)
from price_portal import service as prices

PACKAGE = Path(__file__).parent
PREFIX = "/console/pharmacy"
TEMPLATES = PACKAGE / "templates"
MESSAGES: dict[str, dict[str, str]] = json.loads((TEMPLATES / "messages.json").read_text(encoding="utf-8"))
web.MESSAGES.add(MESSAGES)
web.register_static("pharmacy", PACKAGE / "static")
site = web.Site(TEMPLATES)

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)

MAX_FRAME_BYTES = 2 * 1024 * 1024
MAX_FRAME_PIXELS = 4_000_000
MAX_CSV_BYTES = 5 * 1024 * 1024
HISTORY_LIMIT = 50
DISPENSABLE = ("active", "partially_dispensed")


# ---- the session of a request --------------------------------------------------------------


@dataclass
class Counter:
    """A signed-in pharmacist console: its session and its pharmacy."""

    row: WebSession
    pharmacy: Pharmacy


async def _counter(request: Request, session: SessionDep, runtime: RuntimeDep) -> Counter | None:
    row = await web_session.find_session(
        session, runtime.settings, web_session.session_cookie(request), SessionKind.PHARMACIST
    )
    if row is None:
        return None
    try:
        # Re-checked on every request: a suspended, revoked or re-keyed pharmacy is out at once.
        client = await registry.current_client(session, web_session.principal_of(row))
    except Unauthorized:
        await web_session.end_session(session, row)
        return None
    assert isinstance(client, Pharmacy)
    return Counter(row, client)


CounterDep = Annotated[Counter | None, Depends(_counter)]


def _require(counter: Counter | None) -> Counter:
    if counter is None:
        raise Unauthorized("Your console session has ended; sign in again")
    return counter


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _to_sign_in(request: Request) -> RedirectResponse:
    response = _redirect(f"{PREFIX}/sign-in")
    if web_session.session_cookie(request):
        web_session.clear_session_cookie(response, request)
    return response


def _nav(counter: Counter | None, current: str) -> list[dict[str, Any]]:
    if counter is None:
        return []
    items = [
        ("desk", PREFIX, "pharm.nav.desk"),
        ("dispenses", f"{PREFIX}/dispenses", "pharm.nav.dispenses"),
        ("prices", f"{PREFIX}/prices", "pharm.nav.prices"),
    ]
    return [{"href": href, "label": label, "current": key == current} for key, href, label in items]


def _page(
    request: Request,
    template: str,
    counter: Counter | None,
    current: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "nav": _nav(counter, current),
        "counter": counter,
        "csrf": counter.row.csrf_token if counter else "",
        "sign_out_url": f"{PREFIX}/sign-out",
        "home": PREFIX,
        **(context or {}),
    }
    return site.render(request, template, values, status_code=status_code, cache_seconds=0, headers=headers)


def _js_text(request: Request) -> dict[str, str]:
    lang = web.choose_language(request).lang
    return {key: web.MESSAGES.text(lang, key) for key in MESSAGES["vi"] if key.startswith("pharm.js.")}


# ---- signing in ----------------------------------------------------------------------------


def _sign_in_page(
    request: Request,
    *,
    error: str | None = None,
    connection_code: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = web_session.form_token(request)
    response = _page(
        request,
        "signin.html",
        None,
        "",
        {"form_token": token, "error": error, "connection_code": connection_code},
        status_code=status_code,
        headers=headers,
    )
    web_session.remember_form_token(response, request, token)
    return response


@router.get(f"{PREFIX}/sign-in")
async def sign_in_page(request: Request, counter: CounterDep) -> Response:
    """Show the pharmacy's sign-in form."""
    if counter is not None:
        return _redirect(PREFIX)
    return _sign_in_page(request)


@router.post(f"{PREFIX}/sign-in")
async def sign_in(
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    connection_code: Annotated[str, Form(max_length=32)],
    secret: Annotated[str, Form(max_length=500)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the connection code and secret (throttled like the gateway's token endpoint)."""
    web_session.check_form_token(request, csrf_token)
    code = connection_code.strip().upper()
    t = web.MESSAGES.translator(web.choose_language(request).lang)
    try:
        outcome = await web_session.sign_in(
            session,
            runtime,
            kind=ClientKind.PHARMACY,
            client_id=code,
            secret=secret,
            address=client_address(request),
            pace=pace,
        )
    except Throttled as exc:
        return _sign_in_page(
            request,
            error=t("pharm.signin.throttled"),
            connection_code=code,
            status_code=429,
            headers=exc.headers,
        )
    if outcome.principal is None:
        return _sign_in_page(request, error=t("pharm.signin.wrong"), connection_code=code, status_code=401)
    return await web_session.start_console_session(
        session,
        runtime.settings,
        request,
        kind=SessionKind.PHARMACIST,
        principal=outcome.principal,
        redirect_to=PREFIX,
    )


@router.post(f"{PREFIX}/sign-out")
async def sign_out(
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """End the session; the cookie opens nothing afterwards."""
    if counter is not None:
        web_session.check_csrf(request, counter.row, csrf_token)
        await web_session.end_session(session, counter.row)
    return _to_sign_in(request)


# ---- the counter: scan or type, then dispense ------------------------------------------------


@router.get(PREFIX)
async def desk(request: Request, counter: CounterDep) -> Response:
    """Scan the QR with the camera or type the code."""
    if counter is None:
        return _to_sign_in(request)
    page = {
        "lookup_url": f"{PREFIX}/api/lookup",
        "decode_url": f"{PREFIX}/api/decode",
        "dispense_url": f"{PREFIX}/api/dispenses",
        "sign_in_url": f"{PREFIX}/sign-in",
    }
    return _page(request, "desk.html", counter, "desk", {"page": page, "js_text": _js_text(request)})


class LookupBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: Annotated[str, Field(min_length=1, max_length=4000)]


@dataclass
class LineChoice:
    registration_no: str
    name: str
    unit: str
    own_price: int | None
    declared_price: int | None


async def _choices(
    session: AsyncSession, pharmacy: Pharmacy, found: GatewayPrescription
) -> dict[int, tuple[list[LineChoice], str | None]]:
    """Offer per line the products that may fill it (this pharmacy's price first) and preselect one."""
    numbers = sorted({s.registration_no for item in found.items for s in item.substitutes})
    drugs = await registry.drugs_by_registration_numbers(session, numbers)
    own = await prices.own_prices(session, pharmacy, list(drugs.values()))
    result: dict[int, tuple[list[LineChoice], str | None]] = {}
    for item in found.items:
        choices = [
            LineChoice(s.registration_no, s.name, s.unit, own.get(s.registration_no), s.declared_price)
            for s in item.substitutes
        ]
        # Listed here and cheapest first: what the pharmacist most likely hands over.
        choices.sort(key=lambda c: (c.own_price is None, c.own_price or 0, c.name))
        numbers_here = {c.registration_no for c in choices}
        if item.registration_no in numbers_here and own.get(item.registration_no or "") is not None:
            chosen: str | None = item.registration_no
        else:
            chosen = choices[0].registration_no if choices else None
        result[item.line_no] = (choices, chosen)
    return result


@router.post(f"{PREFIX}/api/lookup")
async def lookup(
    body: LookupBody,
    pace: PaceDep,
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> HTMLResponse:
    """Render the prescription, what remains, and the dispensing form (errors are problem+json)."""
    found_counter = _require(counter)
    web_session.check_csrf(request, found_counter.row)
    found = await gateway.lookup(
        session,
        runtime,
        pharmacy=found_counter.pharmacy,
        text=body.text,
        address=client_address(request),
        pace=pace,
    )
    pharmacy = found_counter.pharmacy
    controlled_refused = found.kind in ("n", "h") and not pharmacy.controlled_licence
    return site.render(
        request,
        "_prescription.html",
        {
            "rx": found,
            "line_choices": await _choices(session, pharmacy, found),
            "dispensable": found.status in DISPENSABLE and not controlled_refused,
            "controlled_refused": controlled_refused,
            # A new key per rendered form: a double click sends the same key and gets one dispense.
            "idempotency_key": uuid.uuid4().hex,
            "today": datetime.now(VIETNAM_TIME).date().isoformat(),
            "issued_at": datetime.fromisoformat(found.issued_at),
            "valid_until": datetime.fromisoformat(found.valid_until),
        },
        cache_seconds=0,
    )


class ConsoleDispense(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Annotated[str, Field(min_length=1, max_length=4000)]
    idempotency_key: Annotated[str, Field(min_length=8, max_length=128)]
    pharmacist: Pharmacist
    items: Annotated[list[DispenseItem], Field(min_length=1, max_length=100)]


@router.post(f"{PREFIX}/api/dispenses")
async def dispense(
    body: ConsoleDispense,
    pace: PaceDep,
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> JSONResponse:
    """Record the sale through the gateway's rules; a repeated form key replays the first answer."""
    found = _require(counter)
    web_session.check_csrf(request, found.row)
    outcome = await gateway.dispense(
        session,
        runtime,
        pharmacy=found.pharmacy,
        code_text=body.code,
        body=DispenseCreate(pharmacist=body.pharmacist, items=body.items),
        idempotency_key=body.idempotency_key,
        address=client_address(request),
        pace=pace,
    )
    answer = dict(outcome.body)
    if "dispense_id" in answer:
        answer["receipt_url"] = f"{PREFIX}/dispenses/{answer['dispense_id']}"
    return JSONResponse(answer, status_code=outcome.status_code)


def decode_qr(data: bytes) -> str | None:
    """Read the first QR code of a JPEG or PNG frame (blocking: call through a thread)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_FRAME_PIXELS:
                raise BadRequest(f"The frame is too large ({width}x{height}); send at most 4 megapixels")
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError) as exc:
        raise BadRequest("The frame is not a JPEG or PNG image") from exc
    found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return str(found[0].text) if found else None


@router.post(f"{PREFIX}/api/decode")
async def decode(request: Request, counter: CounterDep) -> JSONResponse:
    """Decode one camera frame for a browser without BarcodeDetector; the frame is never kept."""
    found = _require(counter)
    web_session.check_csrf(request, found.row)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FRAME_BYTES:
        raise BadRequest("The frame is larger than 2 MB")
    # Read in chunks: a body without a length may not fill the memory before it is refused.
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_FRAME_BYTES:
            raise BadRequest("The frame is larger than 2 MB")
    if not data:
        raise BadRequest("Send one JPEG or PNG frame of at most 2 MB")
    text = await asyncio.to_thread(decode_qr, bytes(data))
    return JSONResponse({"text": text}, headers={"Cache-Control": "no-store"})


# ---- recent dispenses, receipts and voids ----------------------------------------------------


async def _names(session: AsyncSession, views: list[DispenseView]) -> dict[str, str]:
    numbers = sorted({line.registration_no for v in views for line in v.items})
    drugs = await registry.drugs_by_registration_numbers(session, numbers)
    return {number: drug.name for number, drug in drugs.items()}


def _total(view: DispenseView) -> int | None:
    if any(line.unit_price is None for line in view.items):
        return None
    return sum((line.unit_price or 0) * line.quantity for line in view.items)


async def _dispenses_page(
    request: Request,
    counter: Counter,
    session: AsyncSession,
    runtime: RuntimeDep,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = await gateway.history(
        session, pharmacy=counter.pharmacy, since=None, until=None, limit=HISTORY_LIMIT, offset=0
    )
    window = timedelta(seconds=runtime.settings.dispense_void_window_seconds)
    now = datetime.now(VIETNAM_TIME)
    rows = [
        {
            "view": v,
            "total": _total(v),
            "voidable": not v.voided and datetime.fromisoformat(v.created_at) + window > now,
            "created": datetime.fromisoformat(v.created_at),
        }
        for v in page.items
    ]
    return _page(
        request,
        "dispenses.html",
        counter,
        "dispenses",
        {
            "rows": rows,
            "total": page.total,
            "names": await _names(session, page.items),
            "message": message,
            "error": error,
        },
        status_code=status_code,
    )


@router.get(f"{PREFIX}/dispenses")
async def dispenses(
    request: Request, counter: CounterDep, session: SessionDep, runtime: RuntimeDep, done: str | None = None
) -> Response:
    """List this pharmacy's recent dispenses, newest first, with a void button while allowed."""
    if counter is None:
        return _to_sign_in(request)
    t = web.MESSAGES.translator(web.choose_language(request).lang)
    message = t("pharm.void.done") if done == "void" else None
    return await _dispenses_page(request, counter, session, runtime, message=message)


@router.get(f"{PREFIX}/dispenses/{{dispense_id}}")
async def receipt(request: Request, dispense_id: str, counter: CounterDep, session: SessionDep) -> Response:
    """Render a printable receipt of one of this pharmacy's own dispenses (another's is 404)."""
    if counter is None:
        return _to_sign_in(request)
    view = await gateway.own_dispense(session, pharmacy=counter.pharmacy, dispense_id=dispense_id)
    return _page(
        request,
        "receipt.html",
        counter,
        "",
        {
            "d": view,
            "names": await _names(session, [view]),
            "total": _total(view),
            "created": datetime.fromisoformat(view.created_at),
            "pharmacy": counter.pharmacy,
        },
    )


@router.post(f"{PREFIX}/dispenses/{{dispense_id}}/void")
async def void(
    request: Request,
    dispense_id: str,
    counter: CounterDep,
    session: SessionDep,
    runtime: RuntimeDep,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Void one's own dispense within the void window; the quantities return to the prescription."""
    if counter is None:
        return _to_sign_in(request)
    web_session.check_csrf(request, counter.row, csrf_token)
    try:
        # A savepoint: a refused void leaves nothing half-done when the page is shown instead.
        async with session.begin_nested():
            await gateway.void(
                session,
                runtime,
                pharmacy=counter.pharmacy,
                dispense_id=dispense_id,
                reason=reason,
                address=client_address(request),
            )
    except DomainError as exc:
        return await _dispenses_page(
            request, counter, session, runtime, error=exc.detail, status_code=exc.status_code
        )
    return _redirect(f"{PREFIX}/dispenses?done=void")


# ---- price list upload ---------------------------------------------------------------------


@router.get(f"{PREFIX}/prices")
async def prices_page(request: Request, counter: CounterDep) -> Response:
    """Upload this pharmacy's price list as CSV (registration_no,price,unit)."""
    if counter is None:
        return _to_sign_in(request)
    return _page(request, "prices.html", counter, "prices", {"report": None, "errors": []})


@router.post(f"{PREFIX}/prices")
async def upload_prices(
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Publish the uploaded CSV: every row or none, errors named by line."""
    if counter is None:
        return _to_sign_in(request)
    web_session.check_csrf(request, counter.row, csrf_token)
    t = web.MESSAGES.translator(web.choose_language(request).lang)
    data = await file.read(MAX_CSV_BYTES + 1)
    errors: list[dict[str, Any]] = []
    report = None
    if len(data) > MAX_CSV_BYTES:
        errors = [{"loc": ["csv"], "msg": t("pharm.prices.too_large")}]
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            errors = [{"loc": ["csv"], "msg": t("pharm.prices.not_utf8")}]
        else:
            try:
                async with session.begin_nested():
                    report = await prices.import_price_csv(session, counter.pharmacy, text)
            except InvalidContent as exc:
                errors = exc.errors or []
    status_code = 422 if errors else 200
    return _page(
        request,
        "prices.html",
        counter,
        "prices",
        {"report": report, "errors": errors},
        status_code=status_code,
    )
