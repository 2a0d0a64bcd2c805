"""Rules of the drug catalogue: products, search and generic substitution. No HTTP, no commits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.catalogue import repository, vocabulary
from eprescribe.catalogue.models import Drug
from eprescribe.catalogue.schemas import DrugCreate, Product, ProductKey
from kit.cache import TtlCache, database_of
from kit.errors import Conflict, field_error
from kit.text import fold, match_key
from kit.time import utcnow

# The catalogue's CSV columns, in order (`erx drugs import`).
CSV_FIELDS = (
    "registration_no",
    "name",
    "active_ingredient",
    "strength",
    "dosage_form",
    "unit",
    "packaging",
    "manufacturer",
    "country",
    "category",
    "declared_price",
)
# Columns derived from the CSV ones, recomputed on every change.
DERIVED_FIELDS = ("ingredient_key", "strength_key", "form_key", "search_text")
# Lists of registration numbers are queried in slices of this many.
LOOKUP_CHUNK = 1000


def product_key(active_ingredient: str, strength: str, dosage_form: str) -> ProductKey:
    """What generic substitution compares: ingredient, strength and form, folded."""
    return (match_key(active_ingredient), match_key(strength), match_key(dosage_form))


def product(drug: Drug) -> Product:
    assert drug.id is not None
    return Product(
        id=drug.id,
        registration_no=drug.registration_no,
        name=drug.name,
        active_ingredient=drug.active_ingredient,
        strength=drug.strength,
        dosage_form=drug.dosage_form,
        unit=drug.unit,
        category=drug.category,
        declared_price=drug.declared_price,
        packaging=drug.packaging,
        manufacturer=drug.manufacturer,
        country=drug.country,
        key=(drug.ingredient_key, drug.strength_key, drug.form_key),
    )


# ---- adding products --------------------------------------------------------------------


def _drug_from(data: DrugCreate) -> Drug:
    now = utcnow()
    ingredient_key, strength_key, form_key = product_key(
        data.active_ingredient, data.strength, data.dosage_form
    )
    return Drug(
        registration_no=data.registration_no,
        name=data.name,
        active_ingredient=data.active_ingredient,
        strength=data.strength,
        dosage_form=data.dosage_form,
        unit=data.unit,
        packaging=data.packaging,
        manufacturer=data.manufacturer,
        country=data.country,
        category=data.category,
        declared_price=data.declared_price,
        ingredient_key=ingredient_key,
        strength_key=strength_key,
        form_key=form_key,
        search_text=fold(" ".join([data.name, data.active_ingredient, data.registration_no])),
        created_at=now,
        updated_at=now,
    )


async def add_drug(session: AsyncSession, data: DrugCreate) -> Product:
    if await repository.get_drug(session, data.registration_no) is not None:
        raise Conflict(
            f"Product {data.registration_no} is already in the catalogue",
            errors=[field_error(["body", "registration_no"], "already registered")],
        )
    drug = _drug_from(data)
    session.add(drug)
    await session.flush()
    assert drug.id is not None
    await index_words(session, [drug.id])
    _forget_products()
    return product(drug)


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return f"declared_price: {exc}"


def _parse_row(row: dict[str, str]) -> DrugCreate:
    price_text = (row.get("declared_price") or "").strip()
    values: dict[str, Any] = {
        k: (row.get(k) or "").strip() or None for k in CSV_FIELDS if k != "declared_price"
    }
    values["declared_price"] = int(price_text) if price_text else None
    return DrugCreate.model_validate(values)


async def import_drugs(
    session: AsyncSession,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    on_row: Callable[[], None] | None = None,
) -> ImportReport:
    """Add or update catalogue rows; a bad row is reported by line number and skipped."""
    report = ImportReport()
    changed: list[Drug] = []
    for line_no, row in rows:
        try:
            data = _parse_row(row)
        except ValueError as exc:
            report.rejected.append((line_no, _first_error(exc)))
        else:
            existing = await repository.get_drug(session, data.registration_no)
            fresh = _drug_from(data)
            if existing is None:
                session.add(fresh)
                changed.append(fresh)
                report.added += 1
            else:
                for name in (*CSV_FIELDS, *DERIVED_FIELDS):
                    setattr(existing, name, getattr(fresh, name))
                existing.updated_at = fresh.updated_at
                changed.append(existing)
                report.updated += 1
        if on_row:
            on_row()
    await session.flush()
    await index_words(session, sorted({d.id for d in changed if d.id is not None}))
    _forget_products()
    return report


# ---- reading products -------------------------------------------------------------------


async def get_product(session: AsyncSession, registration_no: str) -> Product | None:
    drug = await repository.get_drug(session, registration_no.strip())
    return product(drug) if drug else None


async def products_by_registration(session: AsyncSession, numbers: Sequence[str]) -> dict[str, Product]:
    """Products by registration number (numbers not in the catalogue are simply absent)."""
    unique = sorted({n for n in numbers if n})
    found: dict[str, Product] = {}
    for start in range(0, len(unique), LOOKUP_CHUNK):
        named, _ = await _products(session, unique[start : start + LOOKUP_CHUNK], [])
        found |= named
    return found


def products_query() -> Select[*tuple[Any, ...]]:
    """Every product's columns, id first, to join into another context's query (one object)."""
    return repository.PRODUCTS


def product_from_row(row: Sequence[Any]) -> Product:
    """The product of a row of `products_query()`."""
    (id_, number, name, ingredient, strength, form, unit, category, price, packaging, maker, country) = row[
        :12
    ]
    return Product(
        id=id_,
        registration_no=number,
        name=name,
        active_ingredient=ingredient,
        strength=strength,
        dosage_form=form,
        unit=unit,
        category=category,
        declared_price=price,
        packaging=packaging,
        manufacturer=maker,
        country=country,
        key=(row[12], row[13], row[14]),
    )


async def products_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Product]:
    return {row[0]: product_from_row(row) for row in await repository.product_rows(session, ids)}


async def for_prescribed_lines(
    session: AsyncSession, numbers: Sequence[str], keys: Sequence[ProductKey]
) -> tuple[dict[str, Product], dict[ProductKey, set[str]]]:
    """What checking prescribed lines needs: the products named by registration number, and the
    categories registered under each (ingredient, strength, form) key."""
    named, keyed = await _products(session, sorted(set(numbers)), sorted(set(keys)))
    return named, {key: {p.category for p in products} for key, products in keyed.items()}


# Products change only when the catalogue does, and every lookup, dispense and submission asks
# for them. An addition or import here clears both at once; other processes see it within the
# minute. A miss is never kept, so a product just added is found everywhere at once.
_BY_NUMBER: TtlCache[tuple[Engine, str], Product] = TtlCache(ttl_seconds=60, max_entries=100_000)
_BY_KEY: TtlCache[tuple[Engine, ProductKey], list[Product]] = TtlCache(ttl_seconds=60, max_entries=100_000)


def _forget_products() -> None:
    _BY_NUMBER.clear()
    _BY_KEY.clear()
    _FOUND.clear()


async def _products(
    session: AsyncSession, numbers: Sequence[str], keys: Sequence[ProductKey]
) -> tuple[dict[str, Product], dict[ProductKey, list[Product]]]:
    """Products by registration number, and all products per key (cheapest first), in at most
    one query for what the caches lack."""
    database = database_of(session)
    named: dict[str, Product] = {}
    keyed: dict[ProductKey, list[Product]] = {}
    for number in numbers:
        if (hit := _BY_NUMBER.get((database, number))) is not None:
            named[number] = hit
    for key in keys:
        if (listed := _BY_KEY.get((database, key))) is not None:
            keyed[key] = listed
    lacking_numbers = {n for n in numbers if n not in named}
    lacking_keys = {k for k in keys if k not in keyed}
    if lacking_numbers or lacking_keys:
        fetched: dict[ProductKey, list[Product]] = {key: [] for key in lacking_keys}
        for drug in await repository.drugs_named_or_keyed(
            session, sorted(lacking_numbers), sorted(lacking_keys)
        ):
            found = product(drug)
            if found.registration_no in lacking_numbers:
                named[found.registration_no] = found
                _BY_NUMBER.put((database, found.registration_no), found)
            if found.key in fetched:
                fetched[found.key].append(found)
        for key, products in fetched.items():
            keyed[key] = products
            if products:
                _BY_KEY.put((database, key), products)
    return named, keyed


async def substitutes_by_keys(
    session: AsyncSession, keys: Sequence[ProductKey]
) -> dict[ProductKey, list[Product]]:
    """Registered products a pharmacist may dispense for each key (generic substitution), cheapest first."""
    return (await _products(session, [], sorted(set(keys))))[1]


async def product_with_substitutes(
    session: AsyncSession, registration_no: str
) -> tuple[Product, list[Product]] | None:
    """A product and every product with its ingredient, strength and form (itself included), in one query."""
    wanted = registration_no.strip()
    drugs = [product_from_row(row) for row in await repository.product_and_substitute_rows(session, wanted)]
    item = next((d for d in drugs if d.registration_no == wanted), None)
    return (item, drugs) if item is not None else None


async def substitutes_for(session: AsyncSession, item: Product) -> list[Product]:
    """Every product with the same ingredient, strength and form as `item` (itself included)."""
    return (await substitutes_by_keys(session, [item.key]))[item.key]


# ---- search ---------------------------------------------------------------------------------


async def search(
    session: AsyncSession, *, q: str | None, category: str | None, limit: int, offset: int
) -> tuple[int, list[Product]]:
    """Page through the catalogue by brand, ingredient or registration number (the API's search)."""
    total, drugs = await repository.search_drugs(session, q, category, limit, offset)
    return total, [product(d) for d in drugs]


search_terms = vocabulary.query_terms
# Typos are forgiven in every field but the registration number.
TYPO_FIELDS = sorted(vocabulary.TYPO_FIELDS)


@dataclass(frozen=True)
class Found:
    """Products a query names, best first (ids), and whether they were read through typos."""

    ids: list[int]
    fuzzy: bool


# What a query names changes only with the catalogue, like the products above: kept a minute,
# cleared by a change here; an empty answer is never kept.
_FOUND: TtlCache[tuple[Engine, tuple[str, ...], str | None, int], Found] = TtlCache(
    ttl_seconds=60, max_entries=4096
)


async def find_products(session: AsyncSession, q: str, *, category: str | None, limit: int) -> Found:
    """The products `q` names by brand, ingredient, strength, form, maker or registration number.

    Without diacritics or case; a term also matches the words it begins (from PREFIX_MIN
    letters); when no product matches every term as typed, one wrong letter per word (two in
    long words) is forgiven anywhere but in registration numbers (`vocabulary`). Ranked by
    `vocabulary.rank`: names holding the words first.
    """
    terms = search_terms(q)
    if not terms:
        return Found([], False)
    key = (database_of(session), tuple(terms), category, limit)
    if (hit := _FOUND.get(key)) is not None:
        return Found(list(hit.ids), hit.fuzzy)
    found = await _find(session, terms, category, limit)
    if found.ids:
        _FOUND.put(key, found)
    return found


async def _find(session: AsyncSession, terms: Sequence[str], category: str | None, limit: int) -> Found:
    keys = sorted(set().union(*(vocabulary.lookup_keys(t) for t in terms)))
    candidates = await repository.words_under_keys(session, keys)
    exact: list[str] = []
    typos: list[str] = []
    for word in candidates:
        qualities = [hit for t in terms if (hit := vocabulary.match(t, word)) is not None]
        if any(quality <= vocabulary.Quality.PREFIX for quality in qualities):
            exact.append(word)
        elif qualities:
            typos.append(word)
    found = await repository.postings_of(session, exact, typos, TYPO_FIELDS, category)
    ranked = vocabulary.rank(terms, found, limit)
    return Found(ranked.drug_ids, ranked.fuzzy)


async def index_words(session: AsyncSession, drug_ids: Sequence[int] | None = None) -> None:
    """Bring the search words of these products (of all when None) in line with the catalogue."""
    parts: list[Sequence[int] | None] = (
        [None]
        if drug_ids is None
        else [drug_ids[i : i + LOOKUP_CHUNK] for i in range(0, len(drug_ids), LOOKUP_CHUNK)]
    )
    for part in parts:
        postings = [p for text in await repository.texts_of(session, part) for p in vocabulary.postings(text)]
        await repository.replace_postings(session, part, postings)
        words = sorted({p.word for p in postings})
        new = sorted(set(words) - await repository.known_words(session, words))
        await repository.add_word_keys(session, list(vocabulary.key_rows(new)))


# How many products a category has only chooses a query plan, so a minute-old figure will do.
_CATEGORY_SIZES: TtlCache[tuple[Engine, str], int] = TtlCache(ttl_seconds=60, max_entries=64)


async def category_size(session: AsyncSession, category: str) -> int:
    """About how many products the category has (at most a minute old)."""
    key = (database_of(session), category)
    found = _CATEGORY_SIZES.get(key)
    if found is None:
        found = await repository.count_in_category(session, category)
        _CATEGORY_SIZES.put(key, found)
    return found


def ids_in_category_query(category: str | ColumnElement[str]) -> Select[Any]:
    """A subquery of the ids of one category's products, to compose into another context's query.

    `category` may be a bound parameter, so the composed statement is built once for every category.
    """
    return repository.drug_ids_in_category_query(category)
