"""Writes of listed prices and their counts, the price history and the exports; nothing here
commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, text, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kit.database import upsert
from pharmacy_gateway.prices.filters import (
    COLUMNS,
    COUNT,
    DC,
    DRUG_COUNT,
    HISTORY,
    LISTING,
    SORT_COLUMNS,
    C,
    H,
    L,
    apply,
    dialect_of,
    listings,
    not_hidden,
    params,
)
from pharmacy_gateway.prices.schemas import CountKey, Listing, ListingFilter

# ---- counts ----------------------------------------------------------------------------------


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


async def listings_of(session: AsyncSession, pharmacy_id: int, drug_ids: Sequence[int]) -> dict[int, Listing]:
    found: dict[int, Listing] = {}
    ids = list(drug_ids)
    for start in range(0, len(ids), 1000):
        stmt = select(*COLUMNS).where(L.pharmacy_id == pharmacy_id, L.drug_id.in_(ids[start : start + 1000]))
        for listing in listings(await session.execute(stmt)):
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
        .where(H.drug_id == drug_id, H.recorded_at < at, not_hidden(where))
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
            not_hidden(where),
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
    stmt = apply(dialect_of(session), where, select(*COLUMNS))
    if after is not None:
        stmt = stmt.where(keyset_after(sort, after))
    stmt = stmt.order_by(*SORT_COLUMNS[sort]).limit(size)
    return listings(await session.execute(stmt, params(where)))


async def stream_listings(
    connection: AsyncConnection, where: ListingFilter, sort: str, chunk_size: int
) -> AsyncIterator[list[Listing]]:
    """Yield listings in chunks from one server-side cursor (PostgreSQL)."""
    stmt = apply(dialect_of(connection), where, select(*COLUMNS)).order_by(*SORT_COLUMNS[sort])
    result = await connection.stream(stmt.execution_options(yield_per=chunk_size), params(where))
    async for partition in result.partitions(chunk_size):
        yield listings(partition)


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
