"""Rules of price publication and of the public portal. No HTTP here, and nothing commits."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import re
from bisect import bisect_left, insort
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from difflib import SequenceMatcher
from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe import service as registry
from eprescribe.models import Drug, DrugCategory, Pharmacy
from eprescribe.schemas import VIETNAM_TIME, vn_time
from erx.database import Database, utcnow
from erx.errors import FieldErrors, field_error
from erx.text import fold
from pharmacy_gateway import service as gateway
from price_portal import repository
from price_portal.exceptions import OutletNotFound, PriceListRejected, ProductNotFound
from price_portal.repository import Listing, ListingFilter
from price_portal.schemas import MAX_ITEMS_PER_REQUEST, PriceItemIn

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
CONTROLLED = {DrugCategory.NARCOTIC, DrugCategory.PSYCHOTROPIC, DrugCategory.PRECURSOR}

_SPLIT = re.compile(r"[\s,;:+/()\[\]\"']+")


# ---- reference data ----------------------------------------------------------------------


@dataclass(frozen=True)
class Province:
    code: str
    name_vi: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


@cache
def provinces() -> dict[str, Province]:
    """Provinces of the catalogue data, by code (read once per process)."""
    path = resources.files("eprescribe") / "data" / "provinces.csv"
    if not path.is_file():
        return {}
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    return {r["province_code"]: Province(r["province_code"], r["name_vi"], r["name_en"]) for r in rows}


# ---- search ------------------------------------------------------------------------------


def search_terms(q: str | None) -> list[str]:
    """Fold `q` (no diacritics, lower case) and split it into at most MAX_TERMS words."""
    if not q:
        return []
    return [t for t in _SPLIT.split(fold(q)) if t.strip("-.")][:MAX_TERMS]


@dataclass
class Resolution:
    """The catalogue products a query stands for."""

    drugs: list[Drug]
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


def rank_similar(terms: Sequence[str], catalogue: Sequence[tuple[int, str]], limit: int) -> list[int]:
    """Ids of products with a word close to every term, best first (difflib over folded text)."""
    scored: list[tuple[float, int]] = []
    for drug_id, text in catalogue:
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
    exact = await registry.drugs_matching_words(session, terms, category=category, limit=MAX_MATCHED_PRODUCTS)
    if exact:
        return Resolution(exact, False)
    similar = await registry.drugs_similar_words(session, terms, category=category, limit=MAX_FUZZY_PRODUCTS)
    if similar is None:
        catalogue = await registry.drug_search_texts(session, category=category)
        ids = await asyncio.to_thread(rank_similar, terms, catalogue, MAX_FUZZY_PRODUCTS)
        found = await registry.drugs_by_ids(session, ids)
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
    drug: Drug
    outlet: Pharmacy


@dataclass
class PriceResults:
    total: int
    rows: list[PriceRow]
    products: list[Drug] = field(default_factory=list)
    fuzzy: bool = False


async def public_filter(session: AsyncSession, **values: Any) -> ListingFilter:
    """A listing filter that leaves out suspended and revoked outlets."""
    hidden = await registry.inactive_pharmacy_ids(session, limit=MAX_HIDDEN_LISTED + 1)
    if len(hidden) > MAX_HIDDEN_LISTED:
        return ListingFilter(hidden_outlets_query=registry.inactive_pharmacy_ids_query(), **values)
    return ListingFilter(hidden_outlets=hidden, **values)


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
        return await public_filter(session, drug_ids=ids, **common), resolution
    if query.category:
        # A small category is a short list of products: the per-product plans then apply.
        ids = await registry.drug_ids_in_category(session, query.category, limit=MAX_CATEGORY_LISTED + 1)
        if len(ids) <= MAX_CATEGORY_LISTED:
            return await public_filter(session, drug_ids=ids, **common), None
        return await public_filter(
            session, drug_ids_query=registry.drug_ids_in_category_query(query.category), **common
        ), None
    return await public_filter(session, **common), None


async def _rows(
    session: AsyncSession, listings: Sequence[Listing], known: Sequence[Drug] = ()
) -> list[PriceRow]:
    drugs = {d.id: d for d in known if d.id is not None}
    missing = sorted({x.drug_id for x in listings} - drugs.keys())
    drugs.update(await registry.drugs_by_ids(session, missing))
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
    total = await repository.count_listings(session, where)
    listings = (
        await repository.page_listings(session, where, query.sort, query.limit, query.offset)
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
        self.drugs: dict[int, Drug] = {}
        self.outlets: dict[int, Pharmacy] = {}

    async def fill(self, session: AsyncSession, chunk: Sequence[Listing]) -> None:
        drug_ids = sorted({x.drug_id for x in chunk} - self.drugs.keys())
        outlet_ids = sorted({x.pharmacy_id for x in chunk} - self.outlets.keys())
        self.drugs.update(await registry.drugs_by_ids(session, drug_ids))
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
                async for chunk in repository.stream_listings(connection, where, query.sort, chunk_size):
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
                chunk = await repository.listing_chunk(lookup, where, query.sort, after, chunk_size)
                await names.fill(lookup, chunk)
            if not chunk:
                return
            yield names.lines(chunk)
            after = chunk[-1]
            if len(chunk) < chunk_size:
                return


# ---- product page ------------------------------------------------------------------------


@dataclass
class Stats:
    min: int | None
    median: int | None
    max: int | None
    outlets: int


@dataclass
class Alternative:
    drug: Drug
    min_price: int | None
    outlets: int

    @property
    def reference_price(self) -> int | None:
        return self.min_price if self.min_price is not None else self.drug.declared_price


@dataclass
class ProductView:
    drug: Drug
    stats: Stats
    alternatives: list[Alternative]


async def get_product(session: AsyncSession, registration_no: str) -> Drug:
    drug = await registry.get_drug(session, registration_no)
    if drug is None:
        raise ProductNotFound(registration_no)
    return drug


async def _product_filter(
    session: AsyncSession, drug: Drug, province: str | None = None, kind: str | None = None
) -> ListingFilter:
    assert drug.id is not None
    return await public_filter(session, drug_ids=[drug.id], province=province, kind=kind)


async def price_stats(session: AsyncSession, drug: Drug, province: str | None = None) -> Stats:
    """Lowest, median and highest listed price across the outlets (median of an even count: mean)."""
    where = await _product_filter(session, drug, province)
    count, low, high = await repository.price_summary(session, where)
    if count == 0:
        return Stats(None, None, None, 0)
    middle = await repository.prices_at_rank(session, where, (count - 1) // 2, 1 if count % 2 else 2)
    median = middle[0] if len(middle) == 1 else (middle[0] + middle[1] + 1) // 2
    return Stats(low, median, high, count)


async def cheaper_alternatives(
    session: AsyncSession, drug: Drug, stats: Stats, province: str | None = None
) -> list[Alternative]:
    """Other products with the same ingredient, strength and form that cost less.

    Prices compared: each product's lowest listed price, or its declared price when no outlet
    lists it.
    """
    same = [
        d
        for d in await registry.substitutes_for(
            session,
            active_ingredient=drug.active_ingredient,
            strength=drug.strength,
            dosage_form=drug.dosage_form,
        )
        if d.id != drug.id and d.id is not None
    ]
    reference = stats.min if stats.min is not None else drug.declared_price
    if not same or reference is None:
        return []
    listed = await repository.min_price_by_drug(
        session, [d.id for d in same if d.id is not None], await public_filter(session, province=province)
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
    session: AsyncSession, drugs: Sequence[Drug], *, province: str | None = None
) -> dict[int, tuple[int, int]]:
    """drug id -> (lowest listed price, outlets listing it), for product cards."""
    return await repository.min_price_by_drug(
        session, [d.id for d in drugs if d.id is not None], await public_filter(session, province=province)
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
    outlet: Pharmacy
    above_declared: bool
    distance_km: float | None
    paid_median: int | None
    paid_sales: int | None


@dataclass
class OutletPrices:
    total: int
    items: list[OutletPrice]


async def paid_prices(session: AsyncSession, drug: Drug, now: datetime) -> dict[int, tuple[int, int]]:
    """Outlet id -> (median unit price paid, sales) over 30 days, where sales are enough.

    Only a median over several sales is shown, so no single purchase can be read off the page.
    """
    medians = await gateway.paid_price_medians(
        session, registration_no=drug.registration_no, since=now - PAID_PRICE_WINDOW
    )
    return {outlet: (median, sales) for outlet, (median, sales) in medians.items() if sales >= MIN_PAID_SALES}


async def outlets_for_product(
    session: AsyncSession,
    drug: Drug,
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
    total = await repository.count_listings(session, where)
    if near is not None:
        listings = await repository.page_listings_by_distance(session, where, near[0], near[1], limit, offset)
    else:
        listings = await repository.page_listings(session, where, "price", limit, offset)
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


@dataclass(frozen=True)
class DayStats:
    day: date
    min: int
    median: int
    max: int
    outlets: int


def _median(ordered: Sequence[int]) -> int:
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2] + 1) // 2


async def price_history(
    session: AsyncSession, drug: Drug, *, days: int = HISTORY_DAYS, now: datetime | None = None
) -> list[DayStats]:
    """Lowest, median and highest price in effect at the end of each Vietnam day, across outlets.

    Each outlet's price is a step function of its history; the sweep keeps the prices in
    effect in one sorted list, so each day costs one lookup, not a sort.
    """
    assert drug.id is not None
    now = now or utcnow()
    today = now.astimezone(VIETNAM_TIME).date()
    first_day = today - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time(), VIETNAM_TIME).astimezone(UTC)
    hidden = await public_filter(session)
    current = await repository.prices_in_effect_at(session, drug.id, start, hidden)
    changes = await repository.changes_between(session, drug.id, start, now + timedelta(seconds=1), hidden)
    ordered = sorted(current.values())
    points: list[DayStats] = []
    index = 0
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), VIETNAM_TIME)
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


# ---- outlet page -------------------------------------------------------------------------


@dataclass
class OutletView:
    outlet: Pharmacy
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
    total = await repository.count_listings(session, where)
    listings = await repository.page_listings(session, where, sort, limit, offset) if total > offset else []
    return OutletView(outlet, total, await _rows(session, listings))


# ---- publication -------------------------------------------------------------------------


@dataclass
class PublishReport:
    accepted: int
    created: int
    changed: int
    unchanged: int
    at: datetime


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


def _validate_item(raw: Any, where: Sequence[str | int]) -> tuple[PriceItemIn | None, FieldErrors]:
    try:
        return PriceItemIn.model_validate(raw), []
    except ValidationError as exc:
        return None, [
            field_error([*where, *[p for p in e["loc"] if isinstance(p, str | int)]], e["msg"])
            for e in exc.errors()
        ]


async def publish_prices(
    session: AsyncSession,
    pharmacy: Pharmacy,
    items: Sequence[Any],
    *,
    now: datetime | None = None,
    loc: Sequence[str | int] = ("body", "items"),
    locations: Sequence[Sequence[str | int]] | None = None,
) -> PublishReport:
    """Replace this outlet's listed price of each product and append every change to history.

    Every item is checked, then checked against the catalogue; any bad item refuses the whole
    list, with one error per bad item, and nothing is applied. `locations` names each item in
    the errors when `loc` + index does not (a CSV line, say).
    """
    assert pharmacy.id is not None
    errors: dict[int, FieldErrors] = {}
    parsed: list[tuple[int, list[str | int], PriceItemIn]] = []
    for index, raw in enumerate(items):
        where = list(locations[index]) if locations is not None else [*loc, index]
        item, problems = _validate_item(raw, where)
        if problems:
            errors[index] = problems
        if item is not None:
            parsed.append((index, where, item))
    # An item refused for its price or unit is still checked against the catalogue, so that
    # the pharmacy learns everything wrong with it in one answer.
    unparsed = {
        index: raw["registration_no"].strip()
        for index, raw in enumerate(items)
        if index in errors
        and isinstance(raw, dict)
        and isinstance(raw.get("registration_no"), str)
        and raw["registration_no"].strip()
    }
    drugs = await registry.drugs_by_registration_numbers(
        session, [i.registration_no for _, _, i in parsed] + list(unparsed.values())
    )
    for index, number in unparsed.items():
        if number not in drugs:
            where = list(locations[index]) if locations is not None else [*loc, index]
            errors[index].insert(
                0, field_error([*where, "registration_no"], "no such product in the national catalogue")
            )
    seen: dict[str, list[str | int]] = {}
    accepted: list[tuple[PriceItemIn, Drug]] = []
    for index, where, item in parsed:
        drug = drugs.get(item.registration_no)
        problem: tuple[str, str] | None = None
        if item.registration_no in seen:
            problem = (
                "registration_no",
                f"repeats {'.'.join(map(str, seen[item.registration_no]))}: one price per product",
            )
        elif drug is None:
            problem = ("registration_no", "no such product in the national catalogue")
        elif fold(item.unit) != fold(drug.unit):
            problem = ("unit", f"this product is priced per '{drug.unit}'")
        elif drug.category in CONTROLLED and not pharmacy.controlled_licence:
            problem = ("registration_no", "a controlled drug needs an outlet with a controlled licence")
        else:
            accepted.append((item, drug))
        if problem is not None:
            errors.setdefault(index, []).append(field_error([*where, problem[0]], problem[1]))
        seen.setdefault(item.registration_no, where)
    if errors:
        raise PriceListRejected([e for index in sorted(errors) for e in errors[index]])

    await repository.lock_outlet_prices(session, pharmacy.id)
    # Read the clock once the lock is held, so the history's order is the order of application.
    now = now or utcnow()
    existing = await repository.listings_of(
        session, pharmacy.id, [d.id for _, d in accepted if d.id is not None]
    )
    listings: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    created = changed = 0
    for item, drug in accepted:
        assert drug.id is not None
        before = existing.get(drug.id)
        if before is None:
            created += 1
        elif before.price != item.price:
            changed += 1
        if before is None or before.price != item.price:
            history.append(
                {
                    "pharmacy_id": pharmacy.id,
                    "drug_id": drug.id,
                    "price": item.price,
                    "unit": drug.unit,
                    "recorded_at": now,
                }
            )
        listings.append(
            {
                "pharmacy_id": pharmacy.id,
                "drug_id": drug.id,
                "price": item.price,
                "unit": drug.unit,
                "province_code": pharmacy.province_code,
                "outlet_kind": pharmacy.kind,
                "latitude": pharmacy.latitude,
                "longitude": pharmacy.longitude,
                "updated_at": now,
            }
        )
    await repository.upsert_listings(session, listings)
    await repository.append_history(session, history)
    return PublishReport(len(items), created, changed, len(items) - created - changed, now)


async def outlet_history(
    session: AsyncSession, pharmacy: Pharmacy, registration_no: str
) -> list[tuple[int, str, datetime]]:
    """Every price this outlet listed for a product, oldest first."""
    assert pharmacy.id is not None
    drug = await get_product(session, registration_no)
    assert drug.id is not None
    return await repository.history_for_outlet(session, pharmacy.id, drug.id)


# ---- what the pharmacist console and the patient view need -----------------------------------

PRICE_CSV_COLUMNS = ("registration_no", "price", "unit")


async def own_prices(session: AsyncSession, pharmacy: Pharmacy, drugs: Sequence[Drug]) -> dict[str, int]:
    """Return this outlet's listed price of each given product, by registration number."""
    assert pharmacy.id is not None
    by_id = {d.id: d for d in drugs if d.id is not None}
    listed = await repository.listings_of(session, pharmacy.id, list(by_id))
    return {by_id[drug_id].registration_no: x.price for drug_id, x in listed.items() if drug_id in by_id}


def parse_price_csv(text: str) -> tuple[list[dict[str, Any]], list[list[str | int]]]:
    """Read the rows of a `registration_no,price,unit` CSV and where each came from (`["csv", line]`)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in PRICE_CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise PriceListRejected([field_error(["csv", 1], f"the header lacks {', '.join(missing)}")])
    items: list[dict[str, Any]] = []
    locations: list[list[str | int]] = []
    for row in reader:
        price_text = (row.get("price") or "").strip()
        # A whole number becomes an int; anything else stays text so the error names it.
        price: Any = int(price_text) if price_text.isdigit() else price_text
        items.append(
            {
                "registration_no": row.get("registration_no") or "",
                "price": price,
                "unit": row.get("unit") or "",
            }
        )
        locations.append(["csv", reader.line_num])
    if not items:
        raise PriceListRejected([field_error(["csv"], "the file holds no price rows")])
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise PriceListRejected(
            [field_error(["csv"], f"at most {MAX_ITEMS_PER_REQUEST} rows per file, not {len(items)}")]
        )
    return items, locations


async def import_price_csv(session: AsyncSession, pharmacy: Pharmacy, text: str) -> PublishReport:
    """Publish an uploaded CSV price list: all rows or none, errors named by CSV line."""
    items, locations = parse_price_csv(text)
    return await publish_prices(session, pharmacy, items, locations=locations)


@dataclass
class BasketLine:
    """One remaining prescription line: the products that may fill it and how many units remain."""

    drug_ids: list[int]
    quantity: int


@dataclass
class BasketOffer:
    outlet: Pharmacy
    covered: int
    total: int


async def basket_offers(
    session: AsyncSession, lines: Sequence[BasketLine], *, province: str, limit: int = 10
) -> list[BasketOffer]:
    """Rank the outlets of a province that list most of a basket, cheapest first, with their total."""
    rows = await repository.basket_totals(
        session,
        [(line.drug_ids, line.quantity) for line in lines if line.quantity > 0],
        province=province,
        hidden_outlets=registry.inactive_pharmacy_ids_query(),
        limit=limit,
    )
    outlets = await registry.pharmacies_by_ids(session, [pharmacy_id for pharmacy_id, _, _ in rows])
    return [
        BasketOffer(outlets[pharmacy_id], covered, total)
        for pharmacy_id, covered, total in rows
        if pharmacy_id in outlets
    ]
