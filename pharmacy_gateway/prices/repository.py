"""Queries of listed prices and their history; nothing here commits."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
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
    delete,
    func,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kit.database import one_of, upsert
from kit.prepared import Prepared
from pharmacy_gateway.prices.models import PriceChange, PriceCount, PriceDrugCount, PriceListing
from pharmacy_gateway.prices.schemas import CountKey, Listing, ListingFilter

LISTING = PriceListing.__table__  # type: ignore[attr-defined]
HISTORY = PriceChange.__table__  # type: ignore[attr-defined]
COUNT = PriceCount.__table__  # type: ignore[attr-defined]
DRUG_COUNT = PriceDrugCount.__table__  # type: ignore[attr-defined]
L = LISTING.c
H = HISTORY.c
C = COUNT.c
DC = DRUG_COUNT.c


COLUMNS = (
    L.id,
    L.pharmacy_id,
    L.drug_id,
    L.price,
    L.unit,
    L.province_code,
    L.outlet_kind,
    L.latitude,
    L.longitude,
    L.updated_at,
)


def _listings(rows: Any) -> list[Listing]:
    return [Listing(*row) for row in rows]


# ---- filters ---------------------------------------------------------------------------------
# Statements are built once per shape of filter (which conditions it has, not their values) and
# take the values as parameters, so a search pays neither for building nor for compiling SQL.


@dataclass(frozen=True)
class _Shape:
    """Which conditions a filter has; `categories` and `hidden` are the subqueries it lends."""

    dialect: str
    # None, "one" (one product: the planner then knows the (drug_id, price) index gives the
    # order) or "many".
    drugs: str | None = None
    categories: Select[Any] | None = None
    province: bool = False
    kind: bool = False
    pharmacy: bool = False
    hidden: Select[Any] | None = None


def _shape(dialect: str, where: ListingFilter) -> _Shape:
    return _Shape(
        dialect,
        drugs=None if where.drug_ids is None else "one" if len(where.drug_ids) == 1 else "many",
        categories=where.categories if where.category else None,
        province=bool(where.province),
        kind=bool(where.kind),
        pharmacy=where.pharmacy_id is not None,
        hidden=where.hidden_outlets_query,
    )


def params(where: ListingFilter) -> dict[str, Any]:
    """The values of a filter's conditions, by the names its statements give them."""
    values: dict[str, Any] = {}
    if where.drug_ids is not None and len(where.drug_ids) == 1:
        values["drug_id"] = where.drug_ids[0]
    elif where.drug_ids is not None:
        values["drug_ids"] = list(where.drug_ids)
    if where.category:
        values["category"] = where.category
    if where.province:
        values["province"] = where.province
    if where.kind:
        values["kind"] = where.kind
    if where.pharmacy_id is not None:
        values["pharmacy_id"] = where.pharmacy_id
    return values


def _conditions(shape: _Shape, columns: Any = L) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if shape.drugs == "one":
        found.append(columns.drug_id == bindparam("drug_id"))
    elif shape.drugs == "many":
        found.append(one_of(shape.dialect, columns.drug_id, "drug_ids"))
    if shape.categories is not None:
        found.append(columns.drug_id.in_(shape.categories))
    if shape.province:
        found.append(columns.province_code == bindparam("province"))
    if shape.kind:
        found.append(columns.outlet_kind == bindparam("kind"))
    if shape.pharmacy:
        found.append(columns.pharmacy_id == bindparam("pharmacy_id"))
    if shape.hidden is not None:
        found.append(columns.pharmacy_id.not_in(shape.hidden))
    return found


def apply(dialect: str, where: ListingFilter, stmt: Select[Any]) -> Select[Any]:
    """Restrict a statement over price_listing to what the filter sees (values: `params(where)`)."""
    return stmt.where(*_conditions(_shape(dialect, where)))


def _dialect(session: AsyncSession | AsyncConnection) -> str:
    return session.get_bind().dialect.name if isinstance(session, AsyncSession) else session.dialect.name


def _not_hidden(where: ListingFilter) -> Any:
    """The 'not a hidden outlet' condition alone (for the history table)."""
    if where.hidden_outlets_query is not None:
        return H.pharmacy_id.not_in(where.hidden_outlets_query)
    return true()


SORT_COLUMNS: dict[str, tuple[Any, ...]] = {
    "price": (L.price.asc(), L.id.asc()),
    "-price": (L.price.desc(), L.id.desc()),
    "updated": (L.updated_at.desc(), L.id.desc()),
}


@functools.cache
def _prepared(statement: Select[Any]) -> Prepared:
    return Prepared(statement)


async def _rows(
    session: AsyncSession, shape: _Shape, statement: Select[Any], values: Mapping[str, Any]
) -> Any:
    """The rows of a statement kept per shape; on PostgreSQL sent straight to the driver.

    A portal search is one such statement; SQLAlchemy's execution path (its cache key walks the
    whole statement, every time) cost about a tenth of the request (kit/prepared.py).
    """
    if shape.dialect == "postgresql":
        return await _prepared(statement).rows(session, values)
    return (await session.execute(statement, values)).all()


# ---- totals ----------------------------------------------------------------------------------


@functools.cache
def _total(shape: _Shape) -> ColumnElement[int]:
    """The number of listings a filter sees, as a scalar SQL expression.

    Added up from the counts every change keeps (`price_count`, or `price_drug_count` when the
    filter names products or a category), less the listings of hidden outlets, counted one by
    one (a handful of outlets, reached through the (outlet, product) index). An outlet's own
    list is counted.
    """
    if shape.pharmacy:
        return select(func.count()).select_from(LISTING).where(*_conditions(shape)).scalar_subquery()
    visible = replace(shape, hidden=None)
    table = DRUG_COUNT if shape.drugs or shape.categories is not None else COUNT
    # sum() of a bigint is numeric on PostgreSQL; the total is used as an integer (an offset).
    counted = select(cast(func.coalesce(func.sum(table.c.listings), 0), BigInteger)).select_from(table)
    total: ColumnElement[int] = counted.where(*_conditions(visible, table.c)).scalar_subquery()
    if shape.hidden is not None:
        hidden = (
            select(func.count())
            .select_from(LISTING)
            .where(*_conditions(visible), L.pharmacy_id.in_(shape.hidden))
            .scalar_subquery()
        )
        total = total - hidden
    return total


@functools.cache
def _count_statement(shape: _Shape) -> Select[Any]:
    return select(_total(shape))


async def count_listings(session: AsyncSession, where: ListingFilter) -> int:
    shape = _shape(_dialect(session), where)
    rows = await _rows(session, shape, _count_statement(shape), params(where))
    return int(rows[0][0])


async def add_to_counts(session: AsyncSession, changes: Mapping[CountKey, int]) -> None:
    """Add (product, province, kind) -> change to the listing counts.

    Rows are locked in one order (by product, then by area; sorted within each), so concurrent
    publications queue on a shared row instead of deadlocking.
    """
    by_drug = sorted((key, n) for key, n in changes.items() if n)
    by_area: dict[tuple[str, str], int] = {}
    for (_, province, kind), n in by_drug:
        by_area[(province, kind)] = by_area.get((province, kind), 0) + n
    drug_rows = [
        {"drug_id": d, "province_code": p, "outlet_kind": k, "listings": n} for (d, p, k), n in by_drug
    ]
    area_rows = [
        {"province_code": p, "outlet_kind": k, "listings": n} for (p, k), n in sorted(by_area.items()) if n
    ]
    for table, rows, keys in (
        (DRUG_COUNT, drug_rows, [DC.drug_id, DC.province_code, DC.outlet_kind]),
        (COUNT, area_rows, [C.province_code, C.outlet_kind]),
    ):
        for start in range(0, len(rows), 500):
            stmt = upsert(session, table).values(rows[start : start + 500])
            stmt = stmt.on_conflict_do_update(
                index_elements=keys, set_={"listings": table.c.listings + stmt.excluded.listings}
            )
            await session.execute(stmt)


async def recount(session: AsyncSession) -> None:
    """Count every listing again (after rows were loaded behind the counts' back, e.g. by COPY)."""
    await session.execute(delete(COUNT))
    await session.execute(delete(DRUG_COUNT))
    per_drug = select(L.drug_id, L.province_code, L.outlet_kind, func.count()).group_by(
        L.drug_id, L.province_code, L.outlet_kind
    )
    await session.execute(
        DRUG_COUNT.insert().from_select(["drug_id", "province_code", "outlet_kind", "listings"], per_drug)
    )
    per_area = select(DC.province_code, DC.outlet_kind, func.sum(DC.listings)).group_by(
        DC.province_code, DC.outlet_kind
    )
    await session.execute(COUNT.insert().from_select(["province_code", "outlet_kind", "listings"], per_area))


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


def _per_product_ids(shape: _Shape, sort: str) -> Select[Any]:
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
        .where(*_conditions(rest), L.drug_id == products.c.id)
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
    shape: _Shape, sort: str, per_product: bool, with_total: bool, joined: Joined
) -> Select[Any]:
    """One page: its ids read from an index alone where one covers the filter, then their rows.

    The total comes as the first column when asked for; the `joined` rows' columns follow the
    listing's, each joined on its first column (their lookups by primary key ride along).
    """
    key, descending = SORT_KEYS[sort]
    ids = (
        _per_product_ids(shape, sort)
        if per_product
        else select(L.id).where(*_conditions(shape)).order_by(*_ordered((L[key], L.id), descending))
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
) -> tuple[_Shape, Select[Any], dict[str, Any]]:
    shape = _shape(_dialect(session), where)
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
    return _listings(await _rows(session, shape, stmt, values))


async def page_with_total(
    session: AsyncSession, where: ListingFilter, sort: str, limit: int, offset: int, joined: Joined = ()
) -> tuple[int, list[tuple[Listing, list[tuple[Any, ...]]]]]:
    """The total and one page, each listing with its `joined` rows, in one statement.

    A second statement counts only for a page past the end.
    """
    shape, stmt, values = _page(session, where, sort, limit, offset, with_total=True, joined=joined)
    rows = await _rows(session, shape, stmt, values)
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
    stmt = apply(_dialect(session), where, select(*COLUMNS))
    stmt = stmt.order_by(*distance_order(latitude, longitude)).limit(limit).offset(offset)
    return _listings(await session.execute(stmt, params(where)))


# ---- statistics ------------------------------------------------------------------------------


@functools.cache
def _summary_statement(shape: _Shape) -> Select[Any]:
    total = _total(shape)
    seen = _conditions(shape)
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
    shape = _shape(_dialect(session), where)
    rows = await _rows(session, shape, _summary_statement(shape), params(where))
    listed = int(rows[0][0])
    if listed == 0:
        return 0, None, None, []
    middle = [int(r[3]) for r in rows if r[3] is not None][: 1 if listed % 2 else 2]
    return listed, int(rows[0][1]), int(rows[0][2]), middle


@functools.cache
def _lowest_statement(shape: _Shape) -> Select[Any]:
    visible = replace(shape, hidden=None)
    per_drug = (
        select(DC.drug_id.label("drug_id"), cast(func.sum(DC.listings), BigInteger).label("listings"))
        .where(one_of(shape.dialect, DC.drug_id, "drug_ids"), *_conditions(visible, DC))
        .group_by(DC.drug_id)
        .subquery("per_drug")
    )
    lowest = (
        select(L.price)
        .where(*_conditions(shape), L.drug_id == per_drug.c.drug_id)
        .order_by(L.price, L.id)
        .limit(1)
        .scalar_subquery()
    )
    listings: ColumnElement[int] = per_drug.c.listings
    if shape.hidden is not None:
        hidden = (
            select(func.count())
            .select_from(LISTING)
            .where(*_conditions(visible), L.pharmacy_id.in_(shape.hidden), L.drug_id == per_drug.c.drug_id)
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
    shape = _shape(_dialect(session), where)
    rows = await _rows(session, shape, _lowest_statement(shape), params(where) | {"drug_ids": list(drug_ids)})
    return {int(d): (int(low), int(n)) for d, low, n in rows if low is not None and n > 0}


async def listings_of(session: AsyncSession, pharmacy_id: int, drug_ids: Sequence[int]) -> dict[int, Listing]:
    found: dict[int, Listing] = {}
    ids = list(drug_ids)
    for start in range(0, len(ids), 1000):
        stmt = select(*COLUMNS).where(L.pharmacy_id == pharmacy_id, L.drug_id.in_(ids[start : start + 1000]))
        for listing in _listings(await session.execute(stmt)):
            found[listing.drug_id] = listing
    return found


async def lock_outlet_prices(session: AsyncSession, pharmacy_id: int) -> None:
    """Serialise publications of one outlet, so each history entry follows the one before.

    SQLite already runs every transaction as BEGIN IMMEDIATE (one writer at a time).
    """
    if session.get_bind().dialect.name == "postgresql":
        # Two-key form: the first key names this lock space, the second the outlet.
        await session.execute(text("SELECT pg_advisory_xact_lock(4004, :id)"), {"id": pharmacy_id})


async def upsert_listings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace the current price of (outlet, product) rows in multi-row statements."""
    for start in range(0, len(rows), 500):
        stmt = upsert(session, LISTING).values(list(rows[start : start + 500]))
        stmt = stmt.on_conflict_do_update(
            index_elements=[L.pharmacy_id, L.drug_id],
            set_={
                name: stmt.excluded[name]
                for name in (
                    "price",
                    "unit",
                    "province_code",
                    "outlet_kind",
                    "latitude",
                    "longitude",
                    "updated_at",
                )
            },
        )
        await session.execute(stmt)


async def copy_rows(
    session: AsyncSession, table: str, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> None:
    """Bulk-load rows with PostgreSQL's binary COPY through the session's own connection."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table, records=records, columns=list(columns))


async def analyze(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("ANALYZE price_listing"))
        await session.execute(text("ANALYZE price_history"))


async def any_listed(session: AsyncSession, pharmacy_ids: Sequence[int]) -> bool:
    if not pharmacy_ids:
        return False
    stmt = select(L.id).where(L.pharmacy_id.in_(list(pharmacy_ids))).limit(1)
    return (await session.execute(stmt)).first() is not None


async def append_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 1000):
        await session.execute(HISTORY.insert(), list(rows[start : start + 1000]))


async def history_for_outlet(
    session: AsyncSession, pharmacy_id: int, drug_id: int
) -> list[tuple[int, str, datetime]]:
    """(price, unit, recorded_at) of every change this outlet made to this product, oldest first."""
    stmt = (
        select(H.price, H.unit, H.recorded_at)
        .where(H.pharmacy_id == pharmacy_id, H.drug_id == drug_id)
        .order_by(H.recorded_at, H.id)
    )
    return [(int(r[0]), str(r[1]), r[2]) for r in await session.execute(stmt)]


async def prices_in_effect_at(
    session: AsyncSession, drug_id: int, at: datetime, where: ListingFilter
) -> dict[int, int]:
    """outlet id -> the price it listed at instant `at` (its last change before then)."""
    ranked = (
        select(
            H.pharmacy_id,
            H.price,
            func.row_number()
            .over(partition_by=H.pharmacy_id, order_by=(H.recorded_at.desc(), H.id.desc()))
            .label("rank"),
        )
        .where(H.drug_id == drug_id, H.recorded_at < at, _not_hidden(where))
        .subquery()
    )
    stmt = select(ranked.c.pharmacy_id, ranked.c.price).where(ranked.c.rank == 1)
    return {int(r[0]): int(r[1]) for r in await session.execute(stmt)}


async def changes_between(
    session: AsyncSession, drug_id: int, start: datetime, end: datetime, where: ListingFilter
) -> list[tuple[int, int, datetime]]:
    """(outlet id, price, recorded_at) of every change in [start, end), oldest first."""
    stmt = (
        select(H.pharmacy_id, H.price, H.recorded_at)
        .where(
            H.drug_id == drug_id,
            H.recorded_at >= start,
            H.recorded_at < end,
            _not_hidden(where),
        )
        .order_by(H.recorded_at, H.id)
    )
    return [(int(r[0]), int(r[1]), r[2]) for r in await session.execute(stmt)]


def keyset_after(sort: str, last: Listing) -> Any:
    """The condition 'comes after `last`' in the given sort order (for chunked export)."""
    if sort == "price":
        return tuple_(L.price, L.id) > tuple_(last.price, last.id)
    if sort == "-price":
        return tuple_(L.price, L.id) < tuple_(last.price, last.id)
    return or_(
        L.updated_at < last.updated_at,
        and_(L.updated_at == last.updated_at, L.id < last.id),
    )


async def listing_chunk(
    session: AsyncSession, where: ListingFilter, sort: str, after: Listing | None, size: int
) -> list[Listing]:
    stmt = apply(_dialect(session), where, select(*COLUMNS))
    if after is not None:
        stmt = stmt.where(keyset_after(sort, after))
    stmt = stmt.order_by(*SORT_COLUMNS[sort]).limit(size)
    return _listings(await session.execute(stmt, params(where)))


async def stream_listings(
    connection: AsyncConnection, where: ListingFilter, sort: str, chunk_size: int
) -> AsyncIterator[list[Listing]]:
    """Yield listings in chunks from one server-side cursor (PostgreSQL)."""
    stmt = apply(_dialect(connection), where, select(*COLUMNS)).order_by(*SORT_COLUMNS[sort])
    result = await connection.stream(stmt.execution_options(yield_per=chunk_size), params(where))
    async for partition in result.partitions(chunk_size):
        yield _listings(partition)


async def basket_totals(
    session: AsyncSession,
    lines: Sequence[tuple[Sequence[int], int]],
    *,
    province: str,
    hidden_outlets: Select[Any],
    limit: int,
) -> list[tuple[int, int, int]]:
    """Total a basket per outlet: (pharmacy id, lines covered, total), most lines first, then cheapest.

    Each line is (the products that may fill it, quantity); an outlet's cost of a line is its
    lowest listed price among those products times the quantity. One grouped query per line,
    served by the (province, drug, price) index, then one aggregate over their union.
    """
    parts = [
        select(L.pharmacy_id.label("pharmacy_id"), (func.min(L.price) * quantity).label("cost"))
        .where(
            L.drug_id.in_(list(drug_ids)), L.province_code == province, L.pharmacy_id.not_in(hidden_outlets)
        )
        .group_by(L.pharmacy_id)
        for drug_ids, quantity in lines
        if drug_ids
    ]
    if not parts:
        return []
    per_line = union_all(*parts).subquery()
    covered = func.count().label("covered")
    total = func.sum(per_line.c.cost).label("total")
    stmt = (
        select(per_line.c.pharmacy_id, covered, total)
        .group_by(per_line.c.pharmacy_id)
        .order_by(covered.desc(), total.asc(), per_line.c.pharmacy_id.asc())
        .limit(limit)
    )
    return [(int(p), int(c), int(t)) for p, c, t in (await session.execute(stmt)).all()]
