"""Publishing an outlet's price list: check every item, then apply all of them or none."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.schemas import CONTROLLED_CATEGORIES, Product
from eprescribe.registry.schemas import PharmacyRecord
from kit.errors import FieldErrors, field_error, pydantic_errors
from kit.fields import unsafe_reason
from kit.text import fold, parse_whole_number
from kit.time import utcnow
from pharmacy_gateway.prices import repository
from pharmacy_gateway.prices.exceptions import PriceListRejected
from pharmacy_gateway.prices.schemas import (
    MAX_ITEMS_PER_REQUEST,
    CountKey,
    Listing,
    PriceItemIn,
    PublishReport,
)

Loc = list[str | int]
PRICE_CSV_COLUMNS = ("registration_no", "price", "unit")
NOT_IN_CATALOGUE = "no such product in the national catalogue"


def parse_price_list(body: Any, loc: Sequence[str | int] = ("body",)) -> list[Any]:
    """The raw items of a `{"items": [...]}` body; its shape errors are refused at once."""
    if not isinstance(body, dict):
        raise PriceListRejected([field_error([*loc], "must be an object with `items`")])
    unknown = sorted(set(body) - {"items"})
    if unknown:
        raise PriceListRejected([field_error([*loc, unknown[0]], "unknown field")])
    items = body.get("items")
    if not isinstance(items, list):
        raise PriceListRejected(
            [field_error([*loc, "items"], "must be a list of {registration_no, price, unit}")]
        )
    if not 1 <= len(items) <= MAX_ITEMS_PER_REQUEST:
        raise PriceListRejected(
            [field_error([*loc, "items"], f"must hold 1 to {MAX_ITEMS_PER_REQUEST} items, not {len(items)}")]
        )
    return items


# Column names a pharmacy's spreadsheet may use, folded (no diacritics, lower case, `_` as space).
HEADER_ALIASES = {
    "registration_no": {"registration no", "so dang ky", "sdk", "so dk"},
    "price": {"price", "gia", "don gia", "gia ban", "gia niem yet"},
    "unit": {"unit", "don vi", "don vi tinh", "dvt"},
}


def _column(name: str | None) -> str | None:
    # `Giá (đồng)` is the price column too: what is in brackets only explains.
    folded = fold(re.sub(r"\(.*?\)", "", (name or "").replace("_", " "))).strip(" .:")
    return next((column for column, aliases in HEADER_ALIASES.items() if folded in aliases), None)


def parse_price_csv(text: str) -> tuple[list[dict[str, Any]], list[Loc]]:
    """Read the rows of a `registration_no,price,unit` CSV and where each came from (`["csv", line]`).

    The header may be in Vietnamese (`Số đăng ký;Giá;Đơn vị`), the separator `,` or `;` (what a
    spreadsheet set to Vietnamese writes), and a price may be written `1.500` or `1.500 ₫`.
    """
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    reader.fieldnames = [_column(name) or (name or "") for name in (reader.fieldnames or [])]
    missing = [c for c in PRICE_CSV_COLUMNS if c not in reader.fieldnames]
    if missing:
        raise PriceListRejected(
            [
                field_error(
                    ["csv", 1],
                    f"the header lacks {', '.join(missing)}",
                    "csv_header_missing",
                    columns=missing,
                )
            ]
        )
    items: list[dict[str, Any]] = []
    locations: list[Loc] = []
    for row in reader:
        price_text = (row.get("price") or "").strip()
        # A whole number becomes an int; anything else stays text so the error names it.
        whole = parse_whole_number(price_text)
        price: Any = whole if whole is not None else price_text
        items.append(
            {
                "registration_no": row.get("registration_no") or "",
                "price": price,
                "unit": row.get("unit") or "",
            }
        )
        locations.append(["csv", reader.line_num])
    if not items:
        raise PriceListRejected([field_error(["csv"], "the file holds no price rows", "csv_empty")])
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise PriceListRejected(
            [
                field_error(
                    ["csv"],
                    f"at most {MAX_ITEMS_PER_REQUEST} rows per file, not {len(items)}",
                    "csv_too_many_rows",
                    max=MAX_ITEMS_PER_REQUEST,
                    rows=len(items),
                )
            ]
        )
    return items, locations


def _validate_item(raw: Any, where: Loc) -> tuple[PriceItemIn | None, FieldErrors]:
    try:
        return PriceItemIn.model_validate(raw), []
    except ValidationError as exc:
        return None, pydantic_errors(exc, where)


REGISTRATION_NO_MAX = 64


def _claimed_number(raw: Any) -> str | None:
    """The registration number a refused item names, so it is checked against the catalogue too."""
    if isinstance(raw, dict) and isinstance(raw.get("registration_no"), str):
        number: str = raw["registration_no"].strip()
        # Only what could be a registration number is looked up (found by the fuzzer: a NUL
        # in a refused item reached PostgreSQL).
        if number and len(number) <= REGISTRATION_NO_MAX and unsafe_reason(number) is None:
            return number
    return None


def _item_problem(
    item: PriceItemIn, product: Product | None, repeats: Loc | None, pharmacy: PharmacyRecord
) -> tuple[str, str, str, dict[str, Any]] | None:
    """What is wrong with an item: (field, sentence, code, values), or None."""
    if repeats is not None:
        return (
            "registration_no",
            f"repeats {'.'.join(map(str, repeats))}: one price per product",
            "repeated_product",
            {"at": repeats},
        )
    if product is None:
        return ("registration_no", NOT_IN_CATALOGUE, "not_in_catalogue", {})
    if fold(item.unit) != fold(product.unit):
        return (
            "unit",
            f"this product is priced per '{product.unit}'",
            "unit_differs",
            {"unit": product.unit},
        )
    if product.category in CONTROLLED_CATEGORIES and not pharmacy.controlled_licence:
        return (
            "registration_no",
            "a controlled drug needs an outlet with a controlled licence",
            "controlled_needs_licence",
            {},
        )
    return None


async def _accepted(
    session: AsyncSession, pharmacy: PharmacyRecord, items: Sequence[Any], where_of: Sequence[Loc]
) -> list[tuple[PriceItemIn, Product]]:
    """Check every item, then against the catalogue; refuse the list with one error per bad item."""
    errors: dict[int, FieldErrors] = {}
    parsed: list[tuple[int, Loc, PriceItemIn]] = []
    for index, raw in enumerate(items):
        item, problems = _validate_item(raw, where_of[index])
        if problems:
            errors[index] = problems
        if item is not None:
            parsed.append((index, where_of[index], item))
    # An item refused for its price or unit is still checked against the catalogue, so that
    # the pharmacy learns everything wrong with it in one answer.
    unparsed = {i: n for i in errors if (n := _claimed_number(items[i])) is not None}
    products = await catalogue.products_by_registration(
        session, [i.registration_no for _, _, i in parsed] + list(unparsed.values())
    )
    for index, number in unparsed.items():
        if number not in products:
            errors[index].insert(
                0, field_error([*where_of[index], "registration_no"], NOT_IN_CATALOGUE, "not_in_catalogue")
            )
    seen: dict[str, Loc] = {}
    accepted: list[tuple[PriceItemIn, Product]] = []
    for index, where, item in parsed:
        product = products.get(item.registration_no)
        problem = _item_problem(item, product, seen.get(item.registration_no), pharmacy)
        if problem is not None:
            field, msg, code, params = problem
            errors.setdefault(index, []).append(field_error([*where, field], msg, code, **params))
        elif product is not None:
            accepted.append((item, product))
        seen.setdefault(item.registration_no, where)
    if errors:
        raise PriceListRejected([e for index in sorted(errors) for e in errors[index]])
    return accepted


async def _apply(
    session: AsyncSession,
    pharmacy: PharmacyRecord,
    accepted: list[tuple[PriceItemIn, Product]],
    now: datetime,
) -> tuple[int, int]:
    """Upsert the current prices and append each change to the history; return (created, changed)."""
    existing = await repository.listings_of(session, pharmacy.id, [p.id for _, p in accepted])
    listings: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    created = changed = 0
    for item, product in accepted:
        before = existing.get(product.id)
        if before is None:
            created += 1
        elif before.price != item.price:
            changed += 1
        if before is None or before.price != item.price:
            history.append(
                {
                    "pharmacy_id": pharmacy.id,
                    "drug_id": product.id,
                    "price": item.price,
                    "unit": product.unit,
                    "recorded_at": now,
                }
            )
        listings.append(
            {
                "pharmacy_id": pharmacy.id,
                "drug_id": product.id,
                "price": item.price,
                "unit": product.unit,
                "province_code": pharmacy.province_code,
                "outlet_kind": pharmacy.kind,
                "latitude": pharmacy.latitude,
                "longitude": pharmacy.longitude,
                "updated_at": now,
            }
        )
    await repository.upsert_listings(session, listings)
    await repository.append_history(session, history)
    replaced = {(pharmacy.id, drug_id): x for drug_id, x in existing.items()}
    await repository.add_to_counts(session, count_changes(listings, replaced))
    return created, changed


def count_changes(
    rows: Sequence[Mapping[str, Any]], before: Mapping[tuple[int, int], Listing]
) -> dict[CountKey, int]:
    """What writing these listing rows changes in the counts: (product, province, kind) -> change.

    `before` holds the listings the rows replace, by (outlet, product): a new listing adds one;
    one whose outlet now stands in another province or kind moves from one count to the other.
    """
    changes: dict[CountKey, int] = {}
    for row in rows:
        after: CountKey = (row["drug_id"], row["province_code"], row["outlet_kind"])
        old = before.get((row["pharmacy_id"], row["drug_id"]))
        if old is not None:
            replaced: CountKey = (old.drug_id, old.province_code, old.outlet_kind)
            if replaced == after:
                continue
            changes[replaced] = changes.get(replaced, 0) - 1
        changes[after] = changes.get(after, 0) + 1
    return changes


async def current_listings(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]]
) -> dict[tuple[int, int], Listing]:
    """The listings these rows would replace, by (outlet, product)."""
    wanted: dict[int, list[int]] = {}
    for row in rows:
        wanted.setdefault(row["pharmacy_id"], []).append(row["drug_id"])
    found: dict[tuple[int, int], Listing] = {}
    for pharmacy_id, drug_ids in wanted.items():
        for drug_id, listing in (await repository.listings_of(session, pharmacy_id, drug_ids)).items():
            found[(pharmacy_id, drug_id)] = listing
    return found


async def publish(
    session: AsyncSession,
    pharmacy: PharmacyRecord,
    items: Sequence[Any],
    *,
    now: datetime | None = None,
    loc: Sequence[str | int] = ("body", "items"),
    locations: Sequence[Sequence[str | int]] | None = None,
) -> PublishReport:
    """Replace this outlet's listed price of each product and append every change to history.

    Any bad item refuses the whole list, with one error per bad item, and nothing is applied.
    `locations` names each item in the errors when `loc` + index does not (a CSV line, say).
    """
    where_of = [list(locations[i]) if locations is not None else [*loc, i] for i in range(len(items))]
    accepted = await _accepted(session, pharmacy, items, where_of)
    await repository.lock_outlet_prices(session, pharmacy.id)
    # Read the clock once the lock is held, so the history's order is the order of application.
    now = now or utcnow()
    created, changed = await _apply(session, pharmacy, accepted, now)
    return PublishReport(len(items), created, changed, len(items) - created - changed, now)
