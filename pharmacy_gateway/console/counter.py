"""The counter: scan or type the code, see what remains, dispense (through the gateway's rules).

After a sale the prescription is shown again without its form: selling more of it takes a
deliberate step, so one more click never sells the rest by accident.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import zxingcpp
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError
from pydantic import ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.prescriptions.schemas import CONTROLLED_KINDS, DISPENSABLE
from eprescribe.registry.schemas import PharmacyRecord
from kit import web_session
from kit.database import SessionDep
from kit.errors import BadRequest
from kit.fields import Screened
from kit.inputs import bytes_body
from kit.runtime import RuntimeDep, client_address
from kit.throttle import PaceDep
from kit.time import vn_today
from pharmacy_gateway.console.common import PREFIX, CounterDep, console
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.dispensing.schemas import (
    DispenseCreate,
    DispenseItem,
    GatewayPrescription,
    Pharmacist,
    receipt_number,
)
from pharmacy_gateway.prices import service as prices

router = APIRouter()

MAX_FRAME_BYTES = 2 * 1024 * 1024
MAX_FRAME_PIXELS = 4_000_000
# A sale this large is confirmed once more before it is sent (a slip of the keyboard is costly).
LARGE_SALE_TOTAL = 1_000_000
LARGE_SALE_UNITS = 100


@router.get(PREFIX)
async def desk(request: Request, counter: CounterDep) -> Response:
    """Scan the QR with the camera or a USB scanner, or type the code."""
    if counter is None:
        return console.to_sign_in(request)
    page = {
        "lookup_url": f"{PREFIX}/api/lookup",
        "decode_url": f"{PREFIX}/api/decode",
        "dispense_url": f"{PREFIX}/api/dispenses",
        "sign_in_url": f"{PREFIX}/sign-in",
        "large_total": LARGE_SALE_TOTAL,
        "large_units": LARGE_SALE_UNITS,
    }
    return console.page(
        request, "desk.html", counter, "desk", {"page": page, "js_text": console.js_text(request)}
    )


class LookupBody(Screened):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: Annotated[str, Field(min_length=1, max_length=4000)]
    # False after a sale: show what remains without a form until the pharmacist asks for one.
    armed: bool = True


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
    dispensable = found.status in DISPENSABLE and not controlled_refused
    return console.site.render(
        request,
        "_prescription.html",
        {
            "rx": found,
            "line_choices": await _choices(session, pharmacy, found),
            "dispensable": dispensable,
            "armed": dispensable and body.armed,
            "controlled_refused": controlled_refused,
            # A new key per rendered form: a double click sends the same key and gets one dispense.
            "idempotency_key": uuid.uuid4().hex,
            "today": vn_today(),
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
        receipt = f"{PREFIX}/dispenses/{answer['dispense_id']}"
        answer |= {
            "receipt_url": receipt,
            "receipt_roll_url": f"{receipt}?layout=roll",
            "receipt_no": receipt_number(answer["dispense_id"]),
        }
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
