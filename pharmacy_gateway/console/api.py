"""The pharmacist console: sign in with the connection code, scan or type, dispense, void, publish prices.

Everything goes through the gateway's services exactly as the gateway API does (the access
log, throttling of unknown codes, idempotent dispensing), with a browser session instead of a
bearer token. Camera frames the browser cannot decode itself are decoded here with zxing-cpp,
in a thread, and never stored.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import zxingcpp
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError
from pydantic import ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.prescriptions.schemas import CONTROLLED_KINDS, DISPENSABLE
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit import web, web_session
from kit.console import Console, NavItem, Signed, SignInForm
from kit.database import SessionDep
from kit.errors import BadRequest, DomainError, InvalidContent
from kit.fields import Screened
from kit.inputs import bytes_body
from kit.runtime import Runtime, RuntimeDep, client_address
from kit.security import ClientKind, Principal
from kit.throttle import Pace, PaceDep
from kit.time import VIETNAM_TIME
from kit.web_session import SessionKind
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.dispensing.schemas import (
    DispenseCreate,
    DispenseItem,
    DispenseView,
    GatewayPrescription,
    Pharmacist,
)
from pharmacy_gateway.prices import service as prices

PACKAGE = Path(__file__).parent
PREFIX = "/console/pharmacy"
MESSAGES = web.load_messages(PACKAGE / "messages.json")
web.register_static("pharmacy", PACKAGE / "static")


async def _authenticate(
    session: AsyncSession, runtime: Runtime, code: str, secret: str, address: str, pace: Pace
) -> Principal:
    return await registry.authenticate(
        session,
        runtime,
        ClientKind.PHARMACY,
        code,
        secret,
        address=address,
        pace=pace,
        answered_with_page=True,
    )


console: Console[PharmacyRecord] = Console(
    prefix=PREFIX,
    kind=SessionKind.PHARMACIST,
    site=web.Site(PACKAGE / "templates"),
    messages=MESSAGES,
    js_prefix="pharm.js.",
    nav=[
        NavItem("desk", "", "pharm.nav.desk"),
        NavItem("dispenses", "/dispenses", "pharm.nav.dispenses"),
        NavItem("prices", "/prices", "pharm.nav.prices"),
    ],
    sign_in_form=SignInForm(
        heading="pharm.signin.title",
        intro="pharm.signin.intro",
        id_label="pharm.signin.code",
        id_name="connection_code",
        id_hint="pharm.signin.code.hint",
        id_max_length=32,
        credential_label="pharm.signin.secret",
        submit="pharm.signin.submit",
        wrong="pharm.signin.wrong",
        throttled="pharm.signin.throttled",
    ),
    load_client=registry.current_pharmacy,
    after_sign_in=PREFIX,
    layout="pharmacy_base.html",
)
Counter = Signed[PharmacyRecord]
CounterDep = Annotated[Counter | None, Depends(console.current)]

router = APIRouter(include_in_schema=False)
router.include_router(web.static_router)

MAX_FRAME_BYTES = 2 * 1024 * 1024
MAX_FRAME_PIXELS = 4_000_000
MAX_CSV_BYTES = 5 * 1024 * 1024
HISTORY_LIMIT = 50


# ---- signing in and out ----------------------------------------------------------------------


@router.get(f"{PREFIX}/sign-in")
async def sign_in_page(request: Request, counter: CounterDep) -> Response:
    """Show the pharmacy's sign-in form."""
    if counter is not None:
        return console.redirect(PREFIX)
    return console.sign_in_page(request)


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
    return await console.sign_in(
        request,
        session,
        runtime,
        pace,
        identifier=connection_code,
        secret=secret,
        csrf_token=csrf_token,
        authenticate=_authenticate,
    )


@router.post(f"{PREFIX}/sign-out")
async def sign_out(
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """End the session; the cookie opens nothing afterwards."""
    return await console.sign_out(request, session, counter, csrf_token)


# ---- the counter: scan or type, then dispense ------------------------------------------------


@router.get(PREFIX)
async def desk(request: Request, counter: CounterDep) -> Response:
    """Scan the QR with the camera or type the code."""
    if counter is None:
        return console.to_sign_in(request)
    page = {
        "lookup_url": f"{PREFIX}/api/lookup",
        "decode_url": f"{PREFIX}/api/decode",
        "dispense_url": f"{PREFIX}/api/dispenses",
        "sign_in_url": f"{PREFIX}/sign-in",
    }
    return console.page(
        request, "desk.html", counter, "desk", {"page": page, "js_text": console.js_text(request)}
    )


class LookupBody(Screened):
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
    session: AsyncSession, pharmacy: PharmacyRecord, found: GatewayPrescription
) -> dict[int, tuple[list[LineChoice], str | None]]:
    """Offer per line the products that may fill it (this pharmacy's price first) and preselect one."""
    numbers = sorted({s.registration_no for item in found.items for s in item.substitutes})
    products = await catalogue.products_by_registration(session, numbers)
    own = await prices.own_prices(session, pharmacy, list(products.values()))
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
    found_counter = console.require(counter)
    web_session.check_csrf(request, found_counter.row)
    found = await dispensing.lookup(
        session,
        runtime,
        pharmacy=found_counter.client,
        text=body.text,
        address=client_address(request),
        pace=pace,
    )
    pharmacy = found_counter.client
    controlled_refused = found.kind in CONTROLLED_KINDS and not pharmacy.controlled_licence
    return console.site.render(
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


class ConsoleDispense(Screened):
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
    found = console.require(counter)
    web_session.check_csrf(request, found.row)
    outcome = await dispensing.dispense(
        session,
        runtime,
        pharmacy=found.client,
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
    except Image.DecompressionBombError as exc:
        # Pillow refuses dimensions that would take gigabytes to decode before our own check.
        raise BadRequest("The frame is too large; send at most 4 megapixels") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadRequest("The frame is not a JPEG or PNG image") from exc
    found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return str(found[0].text) if found else None


@router.post(f"{PREFIX}/api/decode")
async def decode(
    # First: the frame is read before the counter's session opens (kit.inputs).
    data: Annotated[bytes, bytes_body(MAX_FRAME_BYTES, "The frame is larger than 2 MB")],
    request: Request,
    counter: CounterDep,
) -> JSONResponse:
    """Decode one camera frame for a browser without BarcodeDetector; the frame is never kept."""
    found = console.require(counter)
    web_session.check_csrf(request, found.row)
    if not data:
        raise BadRequest("Send one JPEG or PNG frame of at most 2 MB")
    text = await asyncio.to_thread(decode_qr, bytes(data))
    return JSONResponse({"text": text}, headers={"Cache-Control": "no-store"})


# ---- recent dispenses, receipts and voids ----------------------------------------------------


async def _names(session: AsyncSession, views: list[DispenseView]) -> dict[str, str]:
    numbers = sorted({line.registration_no for v in views for line in v.items})
    products = await catalogue.products_by_registration(session, numbers)
    return {number: product.name for number, product in products.items()}


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
    page = await dispensing.history(
        session, pharmacy=counter.client, since=None, until=None, limit=HISTORY_LIMIT, offset=0
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
    return console.page(
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
        return console.to_sign_in(request)
    t = web.MESSAGES.translator(web.choose_language(request).lang)
    message = t("pharm.void.done") if done == "void" else None
    return await _dispenses_page(request, counter, session, runtime, message=message)


@router.get(f"{PREFIX}/dispenses/{{dispense_id}}")
async def receipt(request: Request, dispense_id: str, counter: CounterDep, session: SessionDep) -> Response:
    """Render a printable receipt of one of this pharmacy's own dispenses (another's is 404)."""
    if counter is None:
        return console.to_sign_in(request)
    view = await dispensing.own_dispense(session, pharmacy=counter.client, dispense_id=dispense_id)
    return console.page(
        request,
        "receipt.html",
        counter,
        "",
        {
            "d": view,
            "names": await _names(session, [view]),
            "total": _total(view),
            "created": datetime.fromisoformat(view.created_at),
            "pharmacy": counter.client,
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
        return console.to_sign_in(request)
    web_session.check_csrf(request, counter.row, csrf_token)
    try:
        # A savepoint: a refused void leaves nothing half-done when the page is shown instead.
        async with session.begin_nested():
            await dispensing.void(
                session,
                runtime,
                pharmacy=counter.client,
                dispense_id=dispense_id,
                reason=reason,
                address=client_address(request),
            )
    except DomainError as exc:
        return await _dispenses_page(
            request, counter, session, runtime, error=exc.detail, status_code=exc.status_code
        )
    return console.redirect(f"{PREFIX}/dispenses?done=void")


# ---- price list upload ---------------------------------------------------------------------


@router.get(f"{PREFIX}/prices")
async def prices_page(request: Request, counter: CounterDep) -> Response:
    """Upload this pharmacy's price list as CSV (registration_no,price,unit)."""
    if counter is None:
        return console.to_sign_in(request)
    return console.page(request, "prices.html", counter, "prices", {"report": None, "errors": []})


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
        return console.to_sign_in(request)
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
                    report = await prices.import_price_csv(session, counter.client, text)
            except InvalidContent as exc:
                errors = exc.errors or []
    status_code = 422 if errors else 200
    return console.page(
        request,
        "prices.html",
        counter,
        "prices",
        {"report": report, "errors": errors},
        status_code=status_code,
    )
