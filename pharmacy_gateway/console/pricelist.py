"""The outlet's price list: what is listed now, a template to fill in, and uploads explained row by row."""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from kit import web_session
from kit.database import SessionDep
from kit.errors import InvalidContent
from pharmacy_gateway.console.common import PREFIX, Counter, CounterDep, console, words
from pharmacy_gateway.prices import service as prices
from pharmacy_gateway.prices.schemas import ListingFilter, PriceSort

router = APIRouter()

MAX_CSV_BYTES = 5 * 1024 * 1024
# The page shows the most recently changed listings; the template holds every one.
SHOWN_LISTINGS = 200
TEMPLATE_LISTINGS = 5000


async def current_list(
    session: AsyncSession, counter: Counter, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """This outlet's listed prices, most recently updated first, with the products' names."""
    where = ListingFilter(pharmacy_id=counter.client.id)
    total = await prices.count(session, where)
    listings = await prices.page(session, where, PriceSort.UPDATED, limit, 0) if total else []
    products = await catalogue.products_by_ids(session, sorted({x.drug_id for x in listings}))
    rows = [{"listing": x, "product": products[x.drug_id]} for x in listings if x.drug_id in products]
    return total, rows


async def _page(
    request: Request,
    counter: Counter,
    session: AsyncSession,
    *,
    report: Any = None,
    errors: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    total, rows = await current_list(session, counter, SHOWN_LISTINGS)
    return console.page(
        request,
        "prices.html",
        counter,
        "prices",
        {
            "report": report,
            "errors": errors or [],
            "listed": rows,
            "listed_total": total,
            "template_url": f"{PREFIX}/prices/template.csv",
        },
        status_code=status_code,
    )


@router.get(f"{PREFIX}/prices")
async def prices_page(request: Request, counter: CounterDep, session: SessionDep) -> Response:
    """What this outlet lists now, and the upload of a new price list (CSV)."""
    if counter is None:
        return console.to_sign_in(request)
    return await _page(request, counter, session)


@router.get(f"{PREFIX}/prices/template.csv")
async def price_template(request: Request, counter: CounterDep, session: SessionDep) -> Response:
    """A CSV to fill in: the columns the upload reads, with this outlet's current prices in it."""
    if counter is None:
        return console.to_sign_in(request)
    t = words(request)
    _, rows = await current_list(session, counter, TEMPLATE_LISTINGS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([t(f"pharm.prices.column.{c}") for c in ("registration_no", "product", "price", "unit")])
    for row in sorted(rows, key=lambda r: r["product"].name):
        writer.writerow(
            [row["product"].registration_no, row["product"].name, row["listing"].price, row["listing"].unit]
        )
    return Response(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="bang-gia.csv"', "Cache-Control": "no-store"},
    )


def _decoded(data: bytes) -> str | None:
    """The file's text: UTF-8, else Windows-1258 (what a spreadsheet on a Vietnamese Windows saves)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Windows-1258 writes tones as combining marks: compose them as the catalogue does.
        return unicodedata.normalize("NFC", data.decode("cp1258"))
    except UnicodeDecodeError:
        return None


@router.post(f"{PREFIX}/prices")
async def upload_prices(
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Publish the uploaded CSV: every row or none, each refused row explained."""
    if counter is None:
        return console.to_sign_in(request)
    web_session.check_csrf(request, counter.row, csrf_token)
    data = await file.read(MAX_CSV_BYTES + 1)
    errors: list[dict[str, Any]] = []
    report = None
    if len(data) > MAX_CSV_BYTES:
        errors = [{"loc": ["csv"], "code": "csv_too_large"}]
    else:
        text = _decoded(data)
        if text is None:
            errors = [{"loc": ["csv"], "code": "csv_not_utf8"}]
        else:
            try:
                async with session.begin_nested():
                    report = await prices.import_price_csv(session, counter.client, text)
            except InvalidContent as exc:
                errors = exc.errors or []
    return await _page(
        request, counter, session, report=report, errors=errors, status_code=422 if errors else 200
    )
