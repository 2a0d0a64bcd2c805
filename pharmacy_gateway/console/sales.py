"""The day's sales: what was sold in a period with its totals, as a page and as CSV; receipts in
A5 and on an 80 mm roll; voids, each confirmed on a page of its own first."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from kit import web_session
from kit.database import SessionDep
from kit.runtime import Runtime, RuntimeDep, client_address
from kit.time import VIETNAM_TIME, parse_day, start_of_vn_day, utcnow, vn_today
from pharmacy_gateway.console.common import (
    PREFIX,
    Counter,
    CounterDep,
    console,
    lang_of,
    product_names,
    words,
)
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.dispensing.exceptions import VoidRefused
from pharmacy_gateway.dispensing.schemas import DispenseView, SalesTotals

router = APIRouter()

# A day of one outlet is a few hundred sales; a month fits on a page, longer periods are refused.
MAX_PERIOD_DAYS = 31
MAX_ROWS = 5000
Day = Annotated[str | None, Query(max_length=20)]


def _period(start: str | None, end: str | None) -> tuple[date, date, bool]:
    """The days asked for (today when not given or unreadable) and whether the text was readable."""
    today = vn_today()
    first = parse_day(start) if start else today
    last = parse_day(end) if end else first
    readable = first is not None and last is not None
    first, last = first or today, last or first or today
    if last < first:
        first, last = last, first
    last = min(last, first + timedelta(days=MAX_PERIOD_DAYS - 1))
    return first, last, readable


async def _sales(
    session: AsyncSession, counter: Counter, first: date, last: date
) -> tuple[int, list[DispenseView]]:
    found = await dispensing.history(
        session,
        pharmacy=counter.client,
        since=start_of_vn_day(first),
        until=start_of_vn_day(last + timedelta(days=1)),
        limit=MAX_ROWS,
        offset=0,
    )
    return found.total, found.items


def _voidable(view: DispenseView, runtime: Runtime) -> bool:
    window = timedelta(seconds=runtime.settings.dispense_void_window_seconds)
    return not view.voided and datetime.fromisoformat(view.created_at) + window > utcnow()


def _query(first: date, last: date) -> str:
    end = f"&to={last:%d/%m/%Y}" if last != first else ""
    return f"from={first:%d/%m/%Y}{end}"


@router.get(f"{PREFIX}/dispenses")
async def day_sales(
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    runtime: RuntimeDep,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    receipt: Annotated[str | None, Query(max_length=20)] = None,
    done: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The sales of a day (today unless asked), their totals, receipts and voids; filter by dates."""
    if counter is None:
        return console.to_sign_in(request)
    t = words(request)
    message = t("pharm.void.done") if done == "void" else None
    error = None
    if receipt:
        found = await dispensing.own_dispense_by_receipt(session, pharmacy=counter.client, receipt_no=receipt)
        if found is not None:
            return console.redirect(f"{PREFIX}/dispenses/{found.dispense_id}")
        error = t("pharm.sales.no_receipt", number=receipt.strip().upper())
    first, last, readable = _period(start, end)
    if not readable:
        error = t("pharm.sales.bad_day")
    total, views = await _sales(session, counter, first, last)
    single = first == last
    return console.page(
        request,
        "dispenses.html",
        counter,
        "dispenses",
        {
            "rows": [
                {
                    "view": v,
                    "voidable": _voidable(v, runtime),
                    "created": datetime.fromisoformat(v.created_at),
                }
                for v in views
            ],
            "shown": len(views),
            "total_rows": total,
            "totals": SalesTotals.of(views),
            "names": await product_names(session, views),
            "first": first,
            "last": last,
            "single": single,
            "is_today": single and first == vn_today(),
            "previous_url": f"{PREFIX}/dispenses?{_query(first - timedelta(days=1), first - timedelta(days=1))}",
            "next_url": f"{PREFIX}/dispenses?{_query(last + timedelta(days=1), last + timedelta(days=1))}",
            "csv_url": f"{PREFIX}/dispenses.csv?{_query(first, last)}",
            "message": message,
            "error": error,
            "receipt_typed": receipt or "",
        },
        status_code=422 if error and not receipt else 200,
    )


CSV_COLUMNS = (
    "when",
    "receipt_no",
    "prescription_code",
    "registration_no",
    "product",
    "quantity",
    "unit_price",
    "amount",
    "batch_no",
    "expiry_date",
    "pharmacist",
    "pharmacist_licence",
    "state",
)


def _csv(lang: str, t: Any, views: list[DispenseView], names: dict[str, str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([t(f"pharm.csv.{column}") for column in CSV_COLUMNS])
    for view in reversed(views):
        when = datetime.fromisoformat(view.created_at).astimezone(VIETNAM_TIME).strftime("%d/%m/%Y %H:%M:%S")
        state = t("pharm.dispenses.voided") if view.voided else t("pharm.dispenses.valid")
        for line in view.items:
            priced = line.unit_price is not None
            writer.writerow(
                [
                    when,
                    view.receipt_no,
                    view.prescription_code,
                    line.registration_no,
                    names.get(line.registration_no, ""),
                    line.quantity,
                    line.unit_price if priced else "",
                    (line.unit_price or 0) * line.quantity if priced else "",
                    line.batch_no or "",
                    line.expiry_date.strftime("%d/%m/%Y") if line.expiry_date else "",
                    view.pharmacist.full_name,
                    view.pharmacist.license_no,
                    state,
                ]
            )
    # A byte-order mark, so a spreadsheet opens the Vietnamese names as UTF-8.
    return "\ufeff" + buffer.getvalue()


@router.get(f"{PREFIX}/dispenses.csv")
async def day_sales_csv(
    request: Request,
    counter: CounterDep,
    session: SessionDep,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
) -> Response:
    """The same sales as the page, one row per line sold, for the accounts (UTF-8 CSV)."""
    if counter is None:
        return console.to_sign_in(request)
    first, last, _ = _period(start, end)
    _, views = await _sales(session, counter, first, last)
    body = _csv(lang_of(request), words(request), views, await product_names(session, views))
    name = f"ban-hang-{first.isoformat()}" + (f"-{last.isoformat()}" if last != first else "")
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', "Cache-Control": "no-store"},
    )


@router.get(f"{PREFIX}/dispenses/{{dispense_id}}")
async def receipt(
    request: Request,
    dispense_id: str,
    counter: CounterDep,
    session: SessionDep,
    layout: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """A printable receipt of one of this pharmacy's own dispenses: A5, or an 80 mm roll."""
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
            "names": await product_names(session, [view]),
            "created": datetime.fromisoformat(view.created_at),
            "pharmacy": counter.client,
            "layout": "roll" if layout == "roll" else "a5",
            "receipt_url": f"{PREFIX}/dispenses/{view.dispense_id}",
        },
    )


async def _void_page(
    request: Request,
    counter: Counter,
    session: AsyncSession,
    runtime: Runtime,
    dispense_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    view = await dispensing.own_dispense(session, pharmacy=counter.client, dispense_id=dispense_id)
    return console.page(
        request,
        "void.html",
        counter,
        "dispenses",
        {
            "d": view,
            "created": datetime.fromisoformat(view.created_at),
            "names": await product_names(session, [view]),
            "voidable": _voidable(view, runtime),
            "hours": runtime.settings.dispense_void_window_seconds // 3600,
            "action": f"{PREFIX}/dispenses/{view.dispense_id}/void",
            "error": error,
        },
        status_code=status_code,
    )


@router.get(f"{PREFIX}/dispenses/{{dispense_id}}/void")
async def void_page(
    request: Request, dispense_id: str, counter: CounterDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Show what voiding this sale gives back, and ask for the reason and a confirmation."""
    if counter is None:
        return console.to_sign_in(request)
    return await _void_page(request, counter, session, runtime, dispense_id)


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
    except VoidRefused as exc:
        view = await dispensing.own_dispense(session, pharmacy=counter.client, dispense_id=dispense_id)
        why = "pharm.void.already" if view.voided else "pharm.void.too_old"
        text = words(request)(why, hours=runtime.settings.dispense_void_window_seconds // 3600)
        return await _void_page(
            request, counter, session, runtime, dispense_id, error=text, status_code=exc.status_code
        )
    return console.redirect(f"{PREFIX}/dispenses?done=void")
