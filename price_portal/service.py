"""Rules of price publication and of the public portal. No HTTP here, and nothing commits."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.schemas import Product
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit.database import Database
from kit.time import utcnow, vn_time
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.prices import service as prices
from pharmacy_gateway.prices.schemas import DayStats, Listing, ListingFilter, PriceStats
from price_portal.exceptions import OutletNotFound, ProductNotFound

# Search: how many catalogue products one `q` may stand for.
MAX_MATCHED_PRODUCTS = 500
# A paid-price median is shown only over enough sales that no single purchase shows through.
MIN_PAID_SALES = 3
PAID_PRICE_WINDOW = timedelta(days=30)
HISTORY_DAYS = 180
CSV_CHUNK = 2000

# ---- search ------------------------------------------------------------------------------


def search_terms(q: str | None) -> list[str]:
    """The folded words of `q` a search looks for (no diacritics, lower case), at most eight."""
    return catalogue.search_terms(q)


@dataclass
class Resolution:
    """The catalogue products a query stands for, best first."""

    ids: list[int]
    fuzzy: bool


async def resolve_products(session: AsyncSession, q: str, category: str | None) -> Resolution:
    """Find the products `q` names (brand, ingredient, registration number...), typos forgiven."""
    found = await catalogue.find_products(session, q, category=category, limit=MAX_MATCHED_PRODUCTS)
    return Resolution(found.ids, found.fuzzy)


async def products_in_order(session: AsyncSession, ids: Sequence[int]) -> list[Product]:
    """These products, in this order (a page of what a query names)."""
    found = await catalogue.products_by_ids(session, ids) if ids else {}
    return [found[i] for i in ids if i in found]


@dataclass(frozen=True)
class PriceQuery:
    q: str | None = None
    province: str | None = None
    category: str | None = None
    kind: str | None = None
    sort: str = "price"
    limit: int = 20
    offset: int = 0
    # How many of the matched products, best first, to return as products (the page's cards).
    products: int = 0


@dataclass
class PriceRow:
    listing: Listing
    drug: Product
    outlet: PharmacyRecord


@dataclass
class PriceResults:
    total: int
    rows: list[PriceRow]
    # The best-ranked matched products (as many as the query asked for), and how many matched.
    products: list[Product] = field(default_factory=list)
    matched: int = 0
    fuzzy: bool = False


async def _filter_for(
    session: AsyncSession, query: PriceQuery
) -> tuple[ListingFilter | None, Resolution | None]:
    """The listing filter of a query; None when `q` names no product at all."""
    if query.q and search_terms(query.q):
        resolution = await resolve_products(session, query.q, query.category)
        if not resolution.ids:
            return None, resolution
        where = prices.public_filter(drug_ids=resolution.ids, province=query.province, kind=query.kind)
        return where, resolution
    size = await catalogue.category_size(session, query.category) if query.category else None
    where = prices.public_filter(
        category=query.category, category_size=size, province=query.province, kind=query.kind
    )
    return where, None


async def search_prices(session: AsyncSession, query: PriceQuery) -> PriceResults:
    """Listed prices matching the query, one page in the requested order, and the exact total."""
    where, resolution = await _filter_for(session, query)
    ranked = resolution.ids if resolution else []
    fuzzy = resolution.fuzzy if resolution else False
    shown = ranked[: query.products]
    if where is None:
        return PriceResults(0, [], [], 0, fuzzy)
    total, found = await prices.page_with_products_and_outlets(
        session, where, query.sort, query.limit, query.offset
    )
    rows = [PriceRow(listing, drug, outlet) for listing, drug, outlet in found]
    cards = await catalogue.products_by_ids(session, shown) if shown else {}
    return PriceResults(total, rows, [cards[i] for i in shown if i in cards], len(ranked), fuzzy)


# ---- open data: CSV ----------------------------------------------------------------------

CSV_HEADER = (
    "registration_no",
    "name",
    "active_ingredient",
    "strength",
    "dosage_form",
    "category",
    "outlet_id",
    "outlet_name",
    "outlet_kind",
    "address",
    "province_code",
    "price",
    "unit",
    "updated_at",
)


def _csv_lines(rows: Sequence[tuple[Any, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


class _Names:
    """Catalogue and registry rows met so far in an export (bounded by their table sizes)."""

    def __init__(self) -> None:
        self.drugs: dict[int, Product] = {}
        self.outlets: dict[int, PharmacyRecord] = {}

    async def fill(self, session: AsyncSession, chunk: Sequence[Listing]) -> None:
        drug_ids = sorted({x.drug_id for x in chunk} - self.drugs.keys())
        outlet_ids = sorted({x.pharmacy_id for x in chunk} - self.outlets.keys())
        self.drugs.update(await catalogue.products_by_ids(session, drug_ids))
        self.outlets.update(await registry.pharmacies_by_ids(session, outlet_ids))

    def lines(self, chunk: Sequence[Listing]) -> str:
        rows = []
        for x in chunk:
            d = self.drugs.get(x.drug_id)
            o = self.outlets.get(x.pharmacy_id)
            if d is None or o is None:
                continue
            rows.append(
                (
                    d.registration_no,
                    d.name,
                    d.active_ingredient,
                    d.strength,
                    d.dosage_form,
                    d.category,
                    o.id,
                    o.name,
                    o.kind,
                    o.address,
                    x.province_code,
                    x.price,
                    x.unit,
                    vn_time(x.updated_at),
                )
            )
        return _csv_lines(rows)


async def export_csv(
    database: Database, query: PriceQuery, *, chunk_size: int = CSV_CHUNK
) -> AsyncIterator[str]:
    """Yield the CSV of every row the query matches, chunk by chunk, never all at once.

    PostgreSQL reads one server-side cursor inside a read-only snapshot and looks the names up
    on that same connection: an export never needs a second one (with every pooled connection
    out, one that needed two would wait on itself). SQLite, where every transaction holds the
    single write lock, reads keyset-paginated chunks in short transactions instead, so a slow
    download never blocks writers.
    """
    yield _csv_lines([CSV_HEADER])
    names = _Names()
    if database.dialect == "postgresql":
        async with database.engine.connect() as connection:
            await connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            async with AsyncSession(bind=connection) as lookup:
                where, _ = await _filter_for(lookup, query)
                if where is None:
                    return
                async for chunk in prices.stream(connection, where, query.sort, chunk_size):
                    await names.fill(lookup, chunk)
                    yield names.lines(chunk)
        return
    async with database.sessionmaker() as lookup:
        async with lookup.begin():
            where, _ = await _filter_for(lookup, query)
        if where is None:
            return
        after: Listing | None = None
        while True:
            async with lookup.begin():
                chunk = await prices.chunk(lookup, where, query.sort, after, chunk_size)
                await names.fill(lookup, chunk)
            if not chunk:
                return
            yield names.lines(chunk)
            after = chunk[-1]
            if len(chunk) < chunk_size:
                return


# ---- product page ------------------------------------------------------------------------


@dataclass
class Alternative:
    drug: Product
    min_price: int | None
    outlets: int

    @property
    def reference_price(self) -> int | None:
        return self.min_price if self.min_price is not None else self.drug.declared_price


@dataclass
class ProductView:
    drug: Product
    stats: PriceStats
    alternatives: list[Alternative]


async def get_product(session: AsyncSession, registration_no: str) -> Product:
    drug = await catalogue.get_product(session, registration_no)
    if drug is None:
        raise ProductNotFound(registration_no)
    return drug


def _product_filter(drug: Product, province: str | None = None, kind: str | None = None) -> ListingFilter:
    return prices.public_filter(drug_ids=[drug.id], province=province, kind=kind)


async def price_stats(session: AsyncSession, drug: Product, province: str | None = None) -> PriceStats:
    """Lowest, median and highest listed price across the outlets."""
    return await prices.stats(session, _product_filter(drug, province))


async def cheaper_alternatives(
    session: AsyncSession,
    drug: Product,
    stats: PriceStats,
    province: str | None = None,
    *,
    substitutes: Sequence[Product] | None = None,
) -> list[Alternative]:
    """Other products with the same ingredient, strength and form that cost less.

    Prices compared: each product's lowest listed price, or its declared price when no outlet
    lists it. `substitutes`, when the caller has them, saves reading them again.
    """
    if substitutes is None:
        substitutes = await catalogue.substitutes_for(session, drug)
    same = [d for d in substitutes if d.id != drug.id]
    reference = stats.min if stats.min is not None else drug.declared_price
    if not same or reference is None:
        return []
    listed = await lowest_prices(session, same, province=province)
    alternatives = []
    for d in same:
        low, outlets = listed.get(d.id, (None, 0))
        alternative = Alternative(d, low, outlets)
        price = alternative.reference_price
        if price is not None and price < reference:
            alternatives.append(alternative)
    alternatives.sort(key=lambda a: (a.reference_price or 0, a.drug.name))
    return alternatives


async def lowest_prices(
    session: AsyncSession, drugs: Sequence[Product], *, province: str | None = None
) -> dict[int, tuple[int, int]]:
    """drug id -> (lowest listed price, outlets listing it), for product cards."""
    return await prices.lowest_prices(session, [d.id for d in drugs], prices.public_filter(province=province))


async def product_view(
    session: AsyncSession, registration_no: str, *, province: str | None = None
) -> ProductView:
    found = await catalogue.product_with_substitutes(session, registration_no)
    if found is None:
        raise ProductNotFound(registration_no)
    drug, substitutes = found
    stats = await price_stats(session, drug, province)
    alternatives = await cheaper_alternatives(session, drug, stats, province, substitutes=substitutes)
    return ProductView(drug, stats, alternatives)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


@dataclass
class OutletPrice:
    listing: Listing
    outlet: PharmacyRecord
    above_declared: bool
    distance_km: float | None
    paid_median: int | None
    paid_sales: int | None


@dataclass
class OutletPrices:
    total: int
    items: list[OutletPrice]


async def paid_prices(session: AsyncSession, drug: Product, now: datetime) -> dict[int, tuple[int, int]]:
    """Outlet id -> (median unit price paid, sales) over 30 days, where sales are enough.

    Only a median over several sales is shown, so no single purchase can be read off the page.
    """
    medians = await dispensing.paid_price_medians(
        session, registration_no=drug.registration_no, since=now - PAID_PRICE_WINDOW
    )
    return {outlet: (median, sales) for outlet, (median, sales) in medians.items() if sales >= MIN_PAID_SALES}


async def outlets_for_product(
    session: AsyncSession,
    drug: Product,
    *,
    province: str | None = None,
    kind: str | None = None,
    near: tuple[float, float] | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> OutletPrices:
    """The outlets listing a product, cheapest first or nearest first when `near` is given."""
    now = now or utcnow()
    where = _product_filter(drug, province, kind)
    if near is not None:
        total = await prices.count(session, where)
        listings = await prices.page_by_distance(session, where, near, limit, offset)
    else:
        total, listings = await prices.page_with_total(session, where, "price", limit, offset)
    outlets = await registry.pharmacies_by_ids(session, [x.pharmacy_id for x in listings])
    paid = await paid_prices(session, drug, now) if listings else {}
    items = []
    for x in listings:
        outlet = outlets.get(x.pharmacy_id)
        if outlet is None:
            continue
        distance = None
        if near is not None and x.latitude is not None and x.longitude is not None:
            distance = distance_km(near[0], near[1], x.latitude, x.longitude)
        median, sales = paid.get(x.pharmacy_id, (None, None))
        items.append(
            OutletPrice(
                x,
                outlet,
                drug.declared_price is not None and x.price > drug.declared_price,
                distance,
                median,
                sales,
            )
        )
    return OutletPrices(total, items)


# ---- price history -----------------------------------------------------------------------


async def price_history(
    session: AsyncSession, drug: Product, *, days: int = HISTORY_DAYS, now: datetime | None = None
) -> list[DayStats]:
    """Lowest, median and highest price in effect at the end of each Vietnam day, across outlets."""
    return await prices.daily_history(session, drug.id, days=days, now=now)


# ---- outlet page -------------------------------------------------------------------------


@dataclass
class OutletView:
    outlet: PharmacyRecord
    total: int
    rows: list[PriceRow]


async def outlet_view(
    session: AsyncSession, outlet_id: int, *, sort: str = "price", limit: int = 50, offset: int = 0
) -> OutletView:
    outlet = (await registry.pharmacies_by_ids(session, [outlet_id])).get(outlet_id)
    if outlet is None or outlet.status != "active":
        raise OutletNotFound(outlet_id)
    where = ListingFilter(pharmacy_id=outlet_id)
    total, found = await prices.page_with_products_and_outlets(session, where, sort, limit, offset)
    return OutletView(outlet, total, [PriceRow(listing, drug, lister) for listing, drug, lister in found])
