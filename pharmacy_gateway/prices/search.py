"""The portal's reads of listed prices: a filter's total, its pages (by price or distance) and
its price statistics; nothing here writes."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from kit.database import one_of
from pharmacy_gateway.prices.filters import (
    COLUMNS,
    COUNT,
    DC,
    DRUG_COUNT,
    LISTING,
    L,
    Shape,
    apply,
    conditions,
    dialect_of,
    listings,
    params,
    shape_of,
    shaped_rows,
)
from pharmacy_gateway.prices.schemas import Listing, ListingFilter

# ---- totals ----------------------------------------------------------------------------------


@functools.cache
def _total(shape: Shape) -> ColumnElement[int]:
    """The number of listings a filter sees, as a scalar SQL expression.

    Added up from the counts every change keeps (`price_count`, or `price_drug_count` when the
    filter names products or a category), less the listings of hidden outlets, counted one by
    one (a handful of outlets, reached through the (outlet, product) index). An outlet's own
    list is counted.
    """
    if shape.pharmacy:
        return select(func.count()).select_from(LISTING).where(*conditions(shape)).scalar_subquery()
    visible = replace(shape, hidden=None)
    table = DRUG_COUNT if shape.drugs or shape.categories is not None else COUNT
    # sum() of a bigint is numeric on PostgreSQL; the total is used as an integer (an offset).
    counted = select(cast(func.coalesce(func.sum(table.c.listings), 0), BigInteger)).select_from(table)
    total: ColumnElement[int] = counted.where(*conditions(visible, table.c)).scalar_subquery()
    if shape.hidden is not None:
        hidden = (
            select(func.count())
            .select_from(LISTING)
            .where(*conditions(visible), L.pharmacy_id.in_(shape.hidden))
            .scalar_subquery()
        )
        total = total - hidden
    return total


@functools.cache
def _count_statement(shape: Shape) -> Select[Any]:
    return select(_total(shape))


async def count_listings(session: AsyncSession, where: ListingFilter) -> int:
    shape = shape_of(dialect_of(session), where)
    rows = await shaped_rows(session, shape, _count_statement(shape), params(where))
    return int(rows[0][0])


# ---- pages -----------------------------------------------------------------------------------

# The per-product plan reads up to (products x depth) index entries, one index descent per
# product: it pays off for a search's few dozen products or a small category (whose listings may
# all sit at one end of the price index), while a filter that many listings pass reads a page
# straight off a sorted index.
PER_PRODUCT_MAX_PRODUCTS = 100
PER_PRODUCT_MAX_ENTRIES = 50_000
# The columns a sort reads, and whether it reads them backwards.
SORT_KEYS: dict[str, tuple[str, bool]] = {
    "price": ("price", False),
    "-price": ("price", True),
    "updated": ("updated_at", True),
}


def _ordered(columns: Sequence[Any], descending: bool) -> list[Any]:
    return [c.desc() if descending else c.asc() for c in columns]


def _per_product_ids(shape: Shape, sort: str) -> Select[Any]:
    """The ids of the first `depth` listings of each product in the sort's order, merged (PostgreSQL).

    One index range scan per product, on (drug_id, price) or (drug_id, updated_at), through a
    LATERAL join over the product ids (those `q` matched, or a category's), instead of sorting
    every listing of every product `q` matched: a search for 'paracetamol' (two dozen products,
    tens of thousands of listings) reads a few hundred index entries, inside the index alone. A
    small category's products, dear ones say, are not scanned for along the whole price index.
    """
    key, descending = SORT_KEYS[sort]
    products: Any
    if shape.drugs == "many":
        products = (
            func.unnest(bindparam("drug_ids", type_=ARRAY(Integer))).table_valued("id").render_derived()
        )
        rest = replace(shape, drugs=None)
    else:
        assert shape.categories is not None
        products = shape.categories.subquery("products")
        rest = replace(shape, categories=None)
    per_product = (
        select(L.id, L[key])
        .where(*conditions(rest), L.drug_id == products.c.id)
        .order_by(*_ordered((L[key], L.id), descending))
        .limit(bindparam("depth"))
        .lateral("per_product")
    )
    return (
        select(per_product.c.id)
        .select_from(products)
        .join(per_product, true())
        .order_by(*_ordered((per_product.c[key], per_product.c.id), descending))
    )


# Another context's rows to read with each listing: (its query, id first; the listing's column
# that names the row), e.g. the catalogue's products by `drug_id`.
Joined = tuple[tuple[Select[*tuple[Any, ...]], str], ...]


@functools.cache
def _page_statement(
    shape: Shape, sort: str, per_product: bool, with_total: bool, joined: Joined
) -> Select[Any]:
    """One page: its ids read from an index alone where one covers the filter, then their rows.

    The total comes as the first column when asked for; the `joined` rows' columns follow the
    listing's, each joined on its first column (their lookups by primary key ride along).
    """
    key, descending = SORT_KEYS[sort]
    ids = (
        _per_product_ids(shape, sort)
        if per_product
        else select(L.id).where(*conditions(shape)).order_by(*_ordered((L[key], L.id), descending))
    )
    page = ids.limit(bindparam("limit")).offset(bindparam("offset")).subquery("page")
    rows = LISTING.join(page, L.id == page.c.id)
    columns: list[Any] = [_total(shape)] if with_total else []
    columns += COLUMNS
    for index, (query, listing_column) in enumerate(joined):
        other = query.subquery(f"joined_{index}")
        rows = rows.join(other, other.c[0] == L[listing_column])
        columns += list(other.c)
    return select(*columns).select_from(rows).order_by(*_ordered((L[key], L.id), descending))


def _page(
    session: AsyncSession,
    where: ListingFilter,
    sort: str,
    limit: int,
    offset: int,
    *,
    with_total: bool,
    joined: Joined = (),
) -> tuple[Shape, Select[Any], dict[str, Any]]:
    shape = shape_of(dialect_of(session), where)
    depth = offset + limit
    if where.drug_ids is not None:
        products = len(where.drug_ids) if len(where.drug_ids) > 1 else None
    else:
        products = where.category_size if shape.categories is not None else None
    per_product = (
        shape.dialect == "postgresql"
        and products is not None
        and products <= PER_PRODUCT_MAX_PRODUCTS
        and products * depth <= PER_PRODUCT_MAX_ENTRIES
    )
    values = params(where) | {"limit": limit, "offset": offset, "depth": depth}
    return shape, _page_statement(shape, sort, per_product, with_total, joined), values


async def page_listings(
    session: AsyncSession, where: ListingFilter, sort: str, limit: int, offset: int
) -> list[Listing]:
    shape, stmt, values = _page(session, where, sort, limit, offset, with_total=False)
    return listings(await shaped_rows(session, shape, stmt, values))


async def page_with_total(
    session: AsyncSession, where: ListingFilter, sort: str, limit: int, offset: int, joined: Joined = ()
) -> tuple[int, list[tuple[Listing, list[tuple[Any, ...]]]]]:
    """The total and one page, each listing with its `joined` rows, in one statement.

    A second statement counts only for a page past the end.
    """
    shape, stmt, values = _page(session, where, sort, limit, offset, with_total=True, joined=joined)
    rows = await shaped_rows(session, shape, stmt, values)
    if not rows:
        return await count_listings(session, where), []
    widths = [len(query.selected_columns) for query, _ in joined]
    found = []
    for row in rows:
        start = 1 + len(COLUMNS)
        others = []
        for width in widths:
            others.append(tuple(row[start : start + width]))
            start += width
        found.append((Listing(*row[1 : 1 + len(COLUMNS)]), others))
    return int(rows[0][0]), found


def distance_order(latitude: float, longitude: float) -> tuple[Any, ...]:
    """Order by an equirectangular distance: exact enough to rank outlets within a country.

    Plain arithmetic so that SQLite (without math functions) and PostgreSQL agree.
    """
    scale = math.cos(math.radians(latitude))
    dy = L.latitude - latitude
    dx = (L.longitude - longitude) * scale
    located = case((and_(L.latitude.is_not(None), L.longitude.is_not(None)), 0), else_=1)
    return (located, dy * dy + dx * dx, L.price, L.id)


async def page_listings_by_distance(
    session: AsyncSession, where: ListingFilter, latitude: float, longitude: float, limit: int, offset: int
) -> list[Listing]:
    stmt = apply(dialect_of(session), where, select(*COLUMNS))
    stmt = stmt.order_by(*distance_order(latitude, longitude)).limit(limit).offset(offset)
    return listings(await session.execute(stmt, params(where)))


# ---- statistics ------------------------------------------------------------------------------


@functools.cache
def _summary_statement(shape: Shape) -> Select[Any]:
    total = _total(shape)
    seen = conditions(shape)
    lowest = select(L.price).where(*seen).order_by(L.price, L.id).limit(1).scalar_subquery()
    highest = select(L.price).where(*seen).order_by(L.price.desc(), L.id.desc()).limit(1).scalar_subquery()
    # The middle one (odd count) or two (even count) in ascending order.
    middle = (
        select(L.price.label("price")).where(*seen).order_by(L.price, L.id).limit(2).offset((total - 1) // 2)
    ).subquery("middle")
    one = select(literal(1).label("one")).subquery("one")
    return select(total, lowest, highest, middle.c.price).select_from(one.outerjoin(middle, true()))


async def price_summary(
    session: AsyncSession, where: ListingFilter
) -> tuple[int, int | None, int | None, list[int]]:
    """(count, lowest, highest, the one or two middle prices) of the listings, in one statement.

    The count comes from the kept counts, the ends and the middle from the (drug_id, price) index.
    """
    shape = shape_of(dialect_of(session), where)
    rows = await shaped_rows(session, shape, _summary_statement(shape), params(where))
    listed = int(rows[0][0])
    if listed == 0:
        return 0, None, None, []
    middle = [int(r[3]) for r in rows if r[3] is not None][: 1 if listed % 2 else 2]
    return listed, int(rows[0][1]), int(rows[0][2]), middle


@functools.cache
def _lowest_statement(shape: Shape) -> Select[Any]:
    visible = replace(shape, hidden=None)
    per_drug = (
        select(DC.drug_id.label("drug_id"), cast(func.sum(DC.listings), BigInteger).label("listings"))
        .where(one_of(shape.dialect, DC.drug_id, "drug_ids"), *conditions(visible, DC))
        .group_by(DC.drug_id)
        .subquery("per_drug")
    )
    lowest = (
        select(L.price)
        .where(*conditions(shape), L.drug_id == per_drug.c.drug_id)
        .order_by(L.price, L.id)
        .limit(1)
        .scalar_subquery()
    )
    listings: ColumnElement[int] = per_drug.c.listings
    if shape.hidden is not None:
        hidden = (
            select(func.count())
            .select_from(LISTING)
            .where(*conditions(visible), L.pharmacy_id.in_(shape.hidden), L.drug_id == per_drug.c.drug_id)
            .scalar_subquery()
        )
        listings = listings - hidden
    return select(per_drug.c.drug_id, lowest, listings)


async def min_price_by_drug(
    session: AsyncSession, drug_ids: Sequence[int], where: ListingFilter
) -> dict[int, tuple[int, int]]:
    """drug id -> (lowest listed price, outlets listing it), for the products some outlet lists.

    The numbers come from the kept counts; each lowest price is the first entry of the
    (drug_id, price) index that the filter sees. `where` names no products itself.
    """
    if not drug_ids:
        return {}
    assert where.drug_ids is None and not where.category and where.pharmacy_id is None
    shape = shape_of(dialect_of(session), where)
    rows = await shaped_rows(
        session, shape, _lowest_statement(shape), params(where) | {"drug_ids": list(drug_ids)}
    )
    return {int(d): (int(low), int(n)) for d, low, n in rows if low is not None and n > 0}
