"""Rules of price publication and of the public portal. No HTTP here, and nothing commits."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import service as catalogue
from eprescribe.catalogue.schemas import Product
from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit.database import Database
from kit.text import fold
from kit.time import utcnow, vn_time
from pharmacy_gateway.dispensing import service as dispensing
from pharmacy_gateway.prices import service as prices
from pharmacy_gateway.prices.schemas import DayStats, Listing, ListingFilter, PriceStats
from price_portal.exceptions import OutletNotFound, ProductNotFound

# Search: how many catalogue products one `q` may stand for.
MAX_MATCHED_PRODUCTS = 500
MAX_FUZZY_PRODUCTS = 50
MAX_TERMS = 8
# Python fallback of typo tolerance (SQLite, or PostgreSQL without pg_trgm).
FUZZY_RATIO = 0.75
MIN_FUZZY_TERM = 4
# A paid-price median is shown only over enough sales that no single purchase shows through.
MIN_PAID_SALES = 3
PAID_PRICE_WINDOW = timedelta(days=30)
HISTORY_DAYS = 180
CSV_CHUNK = 2000
# Beyond these, the filter names the rows through a subquery instead of a list.
MAX_HIDDEN_LISTED = 1000
MAX_CATEGORY_LISTED = 64

_SPLIT = re.compile(r"[\s,;:+/()\[\]\"']+")


# ---- search ------------------------------------------------------------------------------


def search_terms(q: str | None) -> list[str]:
    """Fold `q` (no diacritics, lower case) and split it into at most MAX_TERMS words."""
    if not q:
        return []
    return [t for t in _SPLIT.split(fold(q)) if t.strip("-.")][:MAX_TERMS]


@dataclass
class Resolution:
    """The catalogue products a query stands for."""

    drugs: list[Product]
    fuzzy: bool


def _word_score(term: str, words: Sequence[str]) -> float:
    best = 0.0
    for word in words:
        if word.startswith(term) or (any(c.isdigit() for c in term) and term in word):
            return 1.0
        if len(term) >= MIN_FUZZY_TERM:
            best = max(
                best,
                SequenceMatcher(None, term, word).ratio(),
                # A typo in a word typed only in part: compare with that much of the word.
                SequenceMatcher(None, term, word[: len(term)]).ratio(),
            )
    return best


def rank_similar(terms: Sequence[str], texts: Sequence[tuple[int, str]], limit: int) -> list[int]:
    """Ids of products with a word close to every term, best first (difflib over folded text)."""
    scored: list[tuple[float, int]] = []
    for drug_id, text in texts:
        words = _SPLIT.split(text)
        total = 0.0
        for term in terms:
            score = _word_score(term, words)
            if score < FUZZY_RATIO:
                break
            total += score
        else:
            scored.append((-total, drug_id))
    scored.sort()
    return [drug_id for _, drug_id in scored[:limit]]


async def resolve_products(session: AsyncSession, q: str, category: str | None) -> Resolution:
    """Find the products `q` names: brand, ingredient or registration number; typos tolerated."""
    terms = search_terms(q)
    if not terms:
        return Resolution([], False)
    exact = await catalogue.products_matching_words(
        session, terms, category=category, limit=MAX_MATCHED_PRODUCTS
    )
    if exact:
        return Resolution(exact, False)
    similar = await catalogue.products_similar_words(
        session, terms, category=category, limit=MAX_FUZZY_PRODUCTS
    )
    if similar is None:
        texts = await catalogue.search_texts(session, category=category)
        ids = await asyncio.to_thread(rank_similar, terms, texts, MAX_FUZZY_PRODUCTS)
        found = await catalogue.products_by_ids(session, ids)
        similar = [found[i] for i in ids if i in found]
    return Resolution(similar, True)


@dataclass(frozen=True)
class PriceQuery:
    q: str | None = None
    province: str | None = None
    category: str | None = None
    kind: str | None = None
    sort: str = "price"
    limit: int = 20
    offset: int = 0


@dataclass
class PriceRow:
    listing: Listing
    drug: Product
    outlet: PharmacyRecord


@dataclass
class PriceResults:
    total: int
    rows: list[PriceRow]
    products: list[Product] = field(default_factory=list)
    fuzzy: bool = False


async def _filter_for(
    session: AsyncSession, query: PriceQuery
) -> tuple[ListingFilter | None, Resolution | None]:
    """The listing filter of a query; None when `q` names no product at all."""
    resolution = None
    common = {"province": query.province, "kind": query.kind}
    if query.q and search_terms(query.q):
        resolution = await resolve_products(session, query.q, query.category)
        if not resolution.drugs:
            return None, resolution
        ids = [d.id for d in resolution.drugs if d.id is not None]
        return await prices.public_filter(session, drug_ids=ids, **common), resolution
    if query.category:
        # A small category is a short list of products: the per-product plans then apply.
        ids = await catalogue.ids_in_category(session, query.category, limit=MAX_CATEGORY_LISTED + 1)
        if len(ids) <= MAX_CATEGORY_LISTED:
            return await prices.public_filter(session, drug_ids=ids, **common), None
        return await prices.public_filter(
            session, drug_ids_query=catalogue.ids_in_category_query(query.category), **common
        ), None
    return await prices.public_filter(session, **common), None


async def _rows(
    session: AsyncSession, listings: Sequence[Listing], known: Sequence[Product] = ()
) -> list[PriceRow]:
    drugs = {d.id: d for d in known if d.id is not None}
    missing = sorted({x.drug_id for x in listings} - drugs.keys())
    drugs.update(await catalogue.products_by_ids(session, missing))
    outlets = await registry.pharmacies_by_ids(session, sorted({x.pharmacy_id for x in listings}))
    return [
        PriceRow(x, drugs[x.drug_id], outlets[x.pharmacy_id])
        for x in listings
        if x.drug_id in drugs and x.pharmacy_id in outlets
    ]


async def search_prices(session: AsyncSession, query: PriceQuery) -> PriceResults:
    """Listed prices matching the query, one page in the requested order, and the total."""
    where, resolution = await _filter_for(session, query)
    products = resolution.drugs if resolution else []
    fuzzy = resolution.fuzzy if resolution else False
    if where is None:
        return PriceResults(0, [], products, fuzzy)
    total = await prices.count(session, where)
    listings = (
        await prices.page(session, where, query.sort, query.limit, query.offset)
        if total > query.offset
        else []
    )
    return PriceResults(total, await _rows(session, listings, products), products, fuzzy)


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

    PostgreSQL reads one server-side cursor inside a read-only snapshot. SQLite, where every
    transaction holds the single write lock, reads keyset-paginated chunks in short
    transactions instead, so a slow download never blocks writers.
    """
    yield _csv_lines([CSV_HEADER])
    names = _Names()
    async with database.sessionmaker() as lookup:
        if database.dialect == "postgresql":
            async with database.engine.connect() as connection:
                await connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                async with AsyncSession(bind=connection) as session:
                    where, _ = await _filter_for(session, query)
                if where is None:
                    return
                async for chunk in prices.stream(connection, where, query.sort, chunk_size):
                    async with lookup.begin():
                        await names.fill(lookup, chunk)
                    yield names.lines(chunk)
            return
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


async def _product_filter(
    session: AsyncSession, drug: Product, province: str | None = None, kind: str | None = None
) -> ListingFilter:
    assert drug.id is not None
    return await prices.public_filter(session, drug_ids=[drug.id], province=province, kind=kind)


async def price_stats(session: AsyncSession, drug: Product, province: str | None = None) -> PriceStats:
    """Lowest, median and highest listed price across the outlets."""
    return await prices.stats(session, await _product_filter(session, drug, province))


async def cheaper_alternatives(
    session: AsyncSession, drug: Product, stats: PriceStats, province: str | None = None
) -> list[Alternative]:
    """Other products with the same ingredient, strength and form that cost less.

    Prices compared: each product's lowest listed price, or its declared price when no outlet
    lists it.
    """
    same = [d for d in await catalogue.substitutes_for(session, drug) if d.id != drug.id]
    reference = stats.min if stats.min is not None else drug.declared_price
    if not same or reference is None:
        return []
    listed = await prices.lowest_prices(
        session, [d.id for d in same], await prices.public_filter(session, province=province)
    )
    alternatives = []
    for d in same:
        assert d.id is not None
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
    return await prices.lowest_prices(
        session, [d.id for d in drugs], await prices.public_filter(session, province=province)
    )


async def product_view(
    session: AsyncSession, registration_no: str, *, province: str | None = None
) -> ProductView:
    drug = await get_product(session, registration_no)
    stats = await price_stats(session, drug, province)
    return ProductView(drug, stats, await cheaper_alternatives(session, drug, stats, province))


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
    where = await _product_filter(session, drug, province, kind)
    total = await prices.count(session, where)
    if near is not None:
        listings = await prices.page_by_distance(session, where, near, limit, offset)
    else:
        listings = await prices.page(session, where, "price", limit, offset)
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
    found = await registry.pharmacies_by_ids(session, [outlet_id])
    outlet = found.get(outlet_id)
    if outlet is None or outlet.status != "active":
        raise OutletNotFound(outlet_id)
    where = ListingFilter(pharmacy_id=outlet_id)
    total = await prices.count(session, where)
    listings = await prices.page(session, where, sort, limit, offset) if total > offset else []
    return OutletView(outlet, total, await _rows(session, listings))
