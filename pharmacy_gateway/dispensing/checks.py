"""A dispense's lines checked against the prescription: the products named, the batches in date,
never more than remains (no HTTP, never commits)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.prescriptions.exceptions import QuantityExceeded
from eprescribe.prescriptions.schemas import PrescriptionRecord
from kit.errors import FieldErrors, InvalidContent, field_error
from pharmacy_gateway.dispensing.schemas import DispenseCreate


async def products_for_lines(
    session: AsyncSession, body: DispenseCreate, locked: PrescriptionRecord, today: date
) -> dict[int, int]:
    """Check every requested product against its line; return the quantity asked per line_no."""
    by_line = {line.line_no: line for line in locked.lines}
    products = await catalogue.products_by_registration(session, [i.registration_no for i in body.items])
    errors: FieldErrors = []
    wanted: dict[int, int] = defaultdict(int)
    for index, requested in enumerate(body.items):
        loc: list[str | int] = ["body", "items", index]
        line = by_line.get(requested.line_no)
        if line is None:
            errors.append(
                field_error(
                    [*loc, "line_no"],
                    f"the prescription has no line {requested.line_no}",
                    "line_not_on_prescription",
                    line=requested.line_no,
                )
            )
            continue
        product = products.get(requested.registration_no)
        if product is None:
            errors.append(
                field_error(
                    [*loc, "registration_no"], "no such product in the national catalogue", "not_in_catalogue"
                )
            )
            continue
        if product.key != line.key:
            errors.append(
                field_error(
                    [*loc, "registration_no"],
                    "the product's active ingredient, strength or dosage form differs from the prescribed line",
                    "product_differs_from_line",
                )
            )
            continue
        if requested.expiry_date is not None and requested.expiry_date < today:
            errors.append(field_error([*loc, "expiry_date"], "this batch has expired", "batch_expired"))
            continue
        wanted[requested.line_no] += requested.quantity
    if errors:
        raise InvalidContent.from_errors(errors)
    return dict(wanted)


def check_remaining(body: DispenseCreate, wanted: dict[int, int], locked: PrescriptionRecord) -> None:
    remaining = {line.line_no: line.remaining for line in locked.lines}
    errors: FieldErrors = []
    for line_no, quantity in wanted.items():
        if quantity > remaining[line_no]:
            index = next(i for i, item in enumerate(body.items) if item.line_no == line_no)
            errors.append(
                field_error(
                    ["body", "items", index, "quantity"],
                    f"{quantity} asked for line {line_no}, only {remaining[line_no]} remain",
                    "quantity_exceeds_remaining",
                    asked=quantity,
                    line=line_no,
                    remaining=remaining[line_no],
                )
            )
    if errors:
        raise QuantityExceeded(errors[0]["msg"], errors=errors)
