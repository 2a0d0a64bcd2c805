"""Queries of listed prices and their history; nothing here commits."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, case, func, literal, or_, select, text, true, tuple_, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kit.database import upsert
from pharmacy_gateway.prices.models import PriceChange, PriceListing
from pharmacy_gateway.prices.schemas import Listing, ListingFilter

LISTING = PriceListing.__table__  # type: ignore[attr-defined]
HISTORY = PriceChange.__table__  # type: ignore[attr-defined]
L = LISTING.c
H = HISTORY.c


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


def apply(where: ListingFilter, stmt: Select[Any]) -> Select[Any]:
    """Restrict a statement over price_listing to what the filter sees."""
    if where.drug_ids is not None:
        stmt = stmt.where(L.drug_id.in_(list(where.drug_ids)))
    if where.drug_ids_query is not None:
        stmt = stmt.where(L.drug_id.in_(where.drug_ids_query))
    if where.province:
        stmt = stmt.where(L.province_code == where.province)
    if where.kind:
        stmt = stmt.where(L.outlet_kind == where.kind)
    if where.pharmacy_id is not None:
        stmt = stmt.where(L.pharmacy_id == where.pharmacy_id)
    if where.hidden_outlets:
        stmt = stmt.where(L.pharmacy_id.not_in(list(where.hidden_outlets)))
    if where.hidden_outlets_query is not None:
        stmt = stmt.where(L.pharmacy_id.not_in(where.hidden_outlets_query))
    return stmt


def _not_hidden(where: ListingFilter) -> Any:
    """The 'not a hidden outlet' condition alone (for the history table)."""
    if where.hidden_outlets_query is not None:
        return H.pharmacy_id.not_in(where.hidden_outlets_query)
    return H.pharmacy_id.not_in(list(where.hidden_outlets)) if where.hidden_outlets else true()


SORT_COLUMNS: dict[str, tuple[Any, ...]] = {
    "price": (L.price.asc(), L.id.asc()),
    "-price": (L.price.desc(), L.id.desc()),
    "updated": (L.updated_at.desc(), L.id.desc()),
}


def listing_select(where: ListingFilter) -> Select[Any]:
    return apply(where, select(*COLUMNS))


async def count_listings(session: AsyncSession, where: ListingFilter) -> int:
    result = await session.execute(apply(where, select(func.count()).select_from(LISTING)))
    return int(result.scalar_one())


# The per-product plan pays off for up to a few hundred products and the first pages.
PER_PRODUCT_MAX_DEPTH = 1000


def _per_product_top(where: ListingFilter, sort: str, depth: int) -> Select[Any]:
    """The cheapest (or dearest) `depth` listings of each product, merged in one order (PostgreSQL).

    One index range scan per product on (drug_id, price) through a LATERAL join over the
    product ids, instead of sorting every listing of every product `q` matched: a search for
    'paracetamol' (two dozen products, tens of thousands of listings) reads a few hundred
    index entries. The ids travel as one array parameter, so the statement's shape, and its
    compiled form in SQLAlchemy's cache, stay the same whatever `q` matched.
    """
    assert where.drug_ids is not None
    products = func.unnest(literal(list(where.drug_ids), ARRAY(Integer))).table_valued("id").render_derived()
    per_product = (
        apply(replace(where, drug_ids=None), select(*COLUMNS))
        .where(L.drug_id == products.c.id)
        .order_by(*SORT_COLUMNS[sort])
        .limit(depth)
        .lateral("per_product")
    )
    order = (per_product.c.price, per_product.c.id)
    return (
        select(*(per_product.c[c.name] for c in COLUMNS))
        .select_from(products)
        .join(per_product, true())
        .order_by(*(order if sort == "price" else (o.desc() for o in order)))
    )


async def page_listings(
    session: AsyncSession, where: ListingFilter, sort: str, limit: int, offset: int
) -> list[Listing]:
    depth = offset + limit
    if (
        session.get_bind().dialect.name == "postgresql"
        and where.drug_ids is not None
        and len(where.drug_ids) > 1
        and sort in ("price", "-price")
        and depth <= PER_PRODUCT_MAX_DEPTH
    ):
        stmt = _per_product_top(where, sort, depth).limit(limit).offset(offset)
    else:
        stmt = listing_select(where).order_by(*SORT_COLUMNS[sort]).limit(limit).offset(offset)
    result = await session.execute(stmt)
    return _listings(result)


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
    stmt = listing_select(where).order_by(*distance_order(latitude, longitude)).limit(limit).offset(offset)
    result = await session.execute(stmt)
    return _listings(result)


async def price_summary(session: AsyncSession, where: ListingFilter) -> tuple[int, int | None, int | None]:
    """(count, min, max) of the listed prices."""
    stmt = apply(where, select(func.count(), func.min(L.price), func.max(L.price)).select_from(LISTING))
    row = (await session.execute(stmt)).one()
    return (
        int(row[0]),
        (int(row[1]) if row[1] is not None else None),
        (int(row[2]) if row[2] is not None else None),
    )


async def prices_at_rank(session: AsyncSession, where: ListingFilter, offset: int, count: int) -> list[int]:
    """Listed prices in ascending order from `offset` (served by the drug/price index)."""
    stmt = apply(where, select(L.price)).order_by(L.price, L.id).offset(offset).limit(count)
    return [int(p) for p in (await session.execute(stmt)).scalars()]


async def min_price_by_drug(
    session: AsyncSession, drug_ids: Sequence[int], where: ListingFilter
) -> dict[int, tuple[int, int]]:
    """drug id -> (lowest listed price, number of outlets listing it)."""
    if not drug_ids:
        return {}
    stmt = apply(
        where, select(L.drug_id, func.min(L.price), func.count()).where(L.drug_id.in_(list(drug_ids)))
    ).group_by(L.drug_id)
    return {int(r[0]): (int(r[1]), int(r[2])) for r in await session.execute(stmt)}


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
    stmt = listing_select(where)
    if after is not None:
        stmt = stmt.where(keyset_after(sort, after))
    stmt = stmt.order_by(*SORT_COLUMNS[sort]).limit(size)
    return _listings(await session.execute(stmt))


async def stream_listings(
    connection: AsyncConnection, where: ListingFilter, sort: str, chunk_size: int
) -> AsyncIterator[list[Listing]]:
    """Yield listings in chunks from one server-side cursor (PostgreSQL)."""
    stmt = listing_select(where).order_by(*SORT_COLUMNS[sort]).execution_options(yield_per=chunk_size)
    result = await connection.stream(stmt)
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
