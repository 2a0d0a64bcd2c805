"""Listed prices: what pharmacies publish, and the facts the public side reads about them.

The gateway owns the price tables; the public portal reads them only through this module.
No HTTP here, and nothing commits.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.schemas import Product
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit.time import start_of_vn_day, utcnow, vn_today
from pharmacy_gateway.prices import publication, repository, search
from pharmacy_gateway.prices.schemas import (
    BasketLine,
    BasketTotal,
    DayStats,
    Listing,
    ListingFilter,
    PriceStats,
    PublishReport,
)

parse_price_list = publication.parse_price_list
publish_prices = publication.publish


async def import_price_csv(session: AsyncSession, pharmacy: PharmacyRecord, text: str) -> PublishReport:
    """Publish an uploaded CSV price list: all rows or none, errors named by CSV line."""
    items, locations = publication.parse_price_csv(text)
    return await publication.publish(session, pharmacy, items, locations=locations)


async def own_prices(
    session: AsyncSession, pharmacy: PharmacyRecord, products: Sequence[Product]
) -> dict[str, int]:
    """This outlet's listed price of each given product, by registration number."""
    by_id = {p.id: p for p in products}
    listed = await repository.listings_of(session, pharmacy.id, list(by_id))
    return {by_id[drug_id].registration_no: x.price for drug_id, x in listed.items() if drug_id in by_id}


async def outlet_history(
    session: AsyncSession, pharmacy: PharmacyRecord, product: Product
) -> list[tuple[int, str, datetime]]:
    """Every price this outlet listed for a product, oldest first: (price, unit, recorded_at)."""
    return await repository.history_for_outlet(session, pharmacy.id, product.id)


# ---- bulk loading (demo and benchmark data) ---------------------------------------------------

LISTING_COLUMNS = (
    "pharmacy_id",
    "drug_id",
    "price",
    "unit",
    "province_code",
    "outlet_kind",
    "latitude",
    "longitude",
    "updated_at",
)
HISTORY_COLUMNS = ("pharmacy_id", "drug_id", "price", "unit", "recorded_at")


async def any_listed(session: AsyncSession, pharmacy_ids: Sequence[int]) -> bool:
    """Whether any of these outlets lists a price already."""
    return await repository.any_listed(session, pharmacy_ids)


async def bulk_load(
    session: AsyncSession, listings: list[tuple[Any, ...]], history: list[tuple[Any, ...]], *, fresh: bool
) -> None:
    """Load synthetic listings and their history (rows in LISTING_COLUMNS / HISTORY_COLUMNS order).

    On PostgreSQL, outlets that list nothing yet (`fresh`) take the rows through binary COPY;
    otherwise the rows go through the same upsert as a publication.
    """
    rows = [dict(zip(LISTING_COLUMNS, r, strict=True)) for r in listings]
    before = {} if fresh else await publication.current_listings(session, rows)
    if fresh and session.get_bind().dialect.name == "postgresql":
        await repository.copy_rows(session, "price_listing", LISTING_COLUMNS, listings)
        await repository.copy_rows(session, "price_history", HISTORY_COLUMNS, history)
    else:
        await repository.upsert_listings(session, rows)
        await repository.append_history(
            session, [dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in history]
        )
    await repository.add_to_counts(session, publication.count_changes(rows, before))


async def analyze(session: AsyncSession) -> None:
    """Refresh the planner's statistics after a bulk load (PostgreSQL)."""
    await repository.analyze(session)


async def recount(session: AsyncSession) -> None:
    """Count every listing again, for rows loaded behind the service's back (the bench's COPY)."""
    await repository.recount(session)


# ---- reading listings -----------------------------------------------------------------------


# What filters lend from the registry and the catalogue, built once: the statements that embed
# them are built once per shape of filter too.
HIDDEN_OUTLETS = registry.inactive_pharmacy_ids_query()
IN_CATEGORY = catalogue.ids_in_category_query(bindparam("category"))
JOINED = ((catalogue.products_query(), "drug_id"), (registry.pharmacy_records_query(), "pharmacy_id"))


def public_filter(
    *,
    drug_ids: Sequence[int] | None = None,
    category: str | None = None,
    category_size: int | None = None,
    province: str | None = None,
    kind: str | None = None,
) -> ListingFilter:
    """What the public sees: listings of active outlets (read live from the registry), filtered.

    `category_size` (about how many products the category has) lets a page of a small category
    be read product by product instead of along the whole price index.
    """
    return ListingFilter(
        drug_ids=drug_ids,
        category=category,
        categories=IN_CATEGORY if category else None,
        category_size=category_size if category else None,
        province=province,
        kind=kind,
        hidden_outlets_query=HIDDEN_OUTLETS,
    )


async def count(session: AsyncSession, where: ListingFilter) -> int:
    """How many listings the filter sees (exact, from the counts every change keeps)."""
    return await search.count_listings(session, where)


async def page(
    session: AsyncSession, where: ListingFilter, sort: str, limit: int, offset: int
) -> list[Listing]:
    """One page of listings in the given order (price, -price, updated)."""
    return await search.page_listings(session, where, sort, limit, offset)


async def page_with_total(
    session: AsyncSession, where: ListingFilter, sort: str, limit: int, offset: int
) -> tuple[int, list[Listing]]:
    """How many listings the filter sees, and one page of them in the given order."""
    total, found = await search.page_with_total(session, where, sort, limit, offset)
    return total, [listing for listing, _ in found]


async def page_with_products_and_outlets(
    session: AsyncSession, where: ListingFilter, sort: str, limit: int, offset: int
) -> tuple[int, list[tuple[Listing, Product, PharmacyRecord]]]:
    """The total and one page, each listing with its product and outlet, in one round trip.

    The catalogue's and the registry's rows are joined through the queries their services lend.
    """
    total, found = await search.page_with_total(session, where, sort, limit, offset, JOINED)
    rows = [
        (listing, catalogue.product_from_row(product), registry.pharmacy_from_row(outlet))
        for listing, (product, outlet) in found
    ]
    return total, rows


async def page_by_distance(
    session: AsyncSession, where: ListingFilter, near: tuple[float, float], limit: int, offset: int
) -> list[Listing]:
    """One page of listings, nearest outlet first."""
    return await search.page_listings_by_distance(session, where, near[0], near[1], limit, offset)


async def chunk(
    session: AsyncSession, where: ListingFilter, sort: str, after: Listing | None, size: int
) -> list[Listing]:
    """The next `size` listings after `after` in the given order (keyset pagination)."""
    return await repository.listing_chunk(session, where, sort, after, size)


def stream(
    connection: AsyncConnection, where: ListingFilter, sort: str, size: int
) -> AsyncIterator[list[Listing]]:
    """Every listing the filter sees, in chunks from one server-side cursor (PostgreSQL)."""
    return repository.stream_listings(connection, where, sort, size)


async def stats(session: AsyncSession, where: ListingFilter) -> PriceStats:
    """Lowest, median and highest listed price (median of an even count: the rounded mean)."""
    listed, low, high, middle = await search.price_summary(session, where)
    if listed == 0 or low is None or high is None or not middle:
        return PriceStats(None, None, None, 0)
    median = middle[0] if len(middle) == 1 else (middle[0] + middle[1] + 1) // 2
    return PriceStats(low, median, high, listed)


async def lowest_prices(
    session: AsyncSession, drug_ids: Sequence[int], where: ListingFilter
) -> dict[int, tuple[int, int]]:
    """drug id -> (lowest listed price, outlets listing it)."""
    return await search.min_price_by_drug(session, drug_ids, where)


def _median(ordered: Sequence[int]) -> int:
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2] + 1) // 2


async def daily_history(
    session: AsyncSession, drug_id: int, *, days: int, now: datetime | None = None
) -> list[DayStats]:
    """Lowest, median and highest price in effect at the end of each Vietnam day, across outlets.

    Each outlet's price is a step function of its history; the sweep keeps the prices in
    effect in one sorted list, so each day costs one lookup, not a sort.
    """
    now = now or utcnow()
    first_day = vn_today(now) - timedelta(days=days - 1)
    start = start_of_vn_day(first_day).astimezone(UTC)
    hidden = public_filter()
    current = await repository.prices_in_effect_at(session, drug_id, start, hidden)
    changes = await repository.changes_between(session, drug_id, start, now + timedelta(seconds=1), hidden)
    ordered = sorted(current.values())
    points: list[DayStats] = []
    index = 0
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        end = start_of_vn_day(day + timedelta(days=1))
        while index < len(changes) and changes[index][2] < end:
            outlet, price, _ = changes[index]
            old = current.get(outlet)
            if old is not None:
                del ordered[bisect_left(ordered, old)]
            current[outlet] = price
            insort(ordered, price)
            index += 1
        if ordered:
            points.append(DayStats(day, ordered[0], _median(ordered), ordered[-1], len(ordered)))
    return points


async def basket_totals(
    session: AsyncSession, lines: Sequence[BasketLine], *, province: str, limit: int
) -> list[BasketTotal]:
    """Outlets of a province that list most of a basket, cheapest first, with their total."""
    rows = await repository.basket_totals(
        session,
        [(line.drug_ids, line.quantity) for line in lines if line.quantity > 0],
        province=province,
        hidden_outlets=HIDDEN_OUTLETS,
        limit=limit,
    )
    return [BasketTotal(pharmacy_id, covered, total) for pharmacy_id, covered, total in rows]
