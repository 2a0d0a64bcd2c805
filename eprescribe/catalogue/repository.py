"""Queries of the drug catalogue; nothing here commits."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from eprescribe.catalogue.models import Drug, DrugWord, DrugWordKey
from eprescribe.catalogue.schemas import ProductKey
from eprescribe.catalogue.vocabulary import Posting, ProductText
from kit.database import one_of, upsert
from kit.text import fold

CHEAPEST_FIRST = (col(Drug.declared_price).nulls_last(), col(Drug.name))


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def get_drug(session: AsyncSession, registration_no: str) -> Drug | None:
    result = await session.execute(select(Drug).where(col(Drug.registration_no) == registration_no))
    return result.scalar_one_or_none()


async def drugs_by_registration(session: AsyncSession, numbers: Sequence[str]) -> list[Drug]:
    if not numbers:
        return []
    result = await session.execute(select(Drug).where(col(Drug.registration_no).in_(numbers)))
    return list(result.scalars())


# What a `Product` is made of, in the order of its fields.
PRODUCT_COLUMNS = (
    col(Drug.id),
    col(Drug.registration_no),
    col(Drug.name),
    col(Drug.active_ingredient),
    col(Drug.strength),
    col(Drug.dosage_form),
    col(Drug.unit),
    col(Drug.category),
    col(Drug.declared_price),
    col(Drug.packaging),
    col(Drug.manufacturer),
    col(Drug.country),
    col(Drug.ingredient_key),
    col(Drug.strength_key),
    col(Drug.form_key),
)


PRODUCTS = select(*PRODUCT_COLUMNS)


@functools.cache
def _product_rows(dialect: str) -> Any:
    return PRODUCTS.where(one_of(dialect, col(Drug.id), "ids"))


async def product_rows(session: AsyncSession, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The `PRODUCT_COLUMNS` of these products (Core rows: pages of prices read them on every search)."""
    if not ids:
        return []
    result = await session.execute(_product_rows(_dialect(session)), {"ids": list(ids)})
    return [tuple(row) for row in result]


def _key_columns() -> ColumnElement[tuple[str, str, str]]:
    return tuple_(col(Drug.ingredient_key), col(Drug.strength_key), col(Drug.form_key))


async def drugs_named_or_keyed(
    session: AsyncSession, numbers: Sequence[str], keys: Sequence[ProductKey]
) -> list[Drug]:
    """Products with one of these registration numbers or (ingredient, strength, form) keys,
    cheapest declared price first."""
    if not numbers and not keys:
        return []
    conditions = []
    if numbers:
        conditions.append(col(Drug.registration_no).in_(list(numbers)))
    if keys:
        conditions.append(_key_columns().in_(list(keys)))
    stmt = select(Drug).where(or_(*conditions)).order_by(*CHEAPEST_FIRST)
    return list((await session.execute(stmt)).scalars())


_TARGET = (
    select(col(Drug.ingredient_key), col(Drug.strength_key), col(Drug.form_key))
    .where(col(Drug.registration_no) == bindparam("registration_no"))
    .subquery("target")
)
_AND_SUBSTITUTES = (
    select(*PRODUCT_COLUMNS)
    .join(
        _TARGET,
        and_(
            col(Drug.ingredient_key) == _TARGET.c.ingredient_key,
            col(Drug.strength_key) == _TARGET.c.strength_key,
            col(Drug.form_key) == _TARGET.c.form_key,
        ),
    )
    .order_by(*CHEAPEST_FIRST)
)


async def product_and_substitute_rows(session: AsyncSession, registration_no: str) -> list[tuple[Any, ...]]:
    """The product with this number and every product sharing its key (`PRODUCT_COLUMNS`), cheapest first."""
    result = await session.execute(_AND_SUBSTITUTES, {"registration_no": registration_no})
    return [tuple(row) for row in result]


async def search_drugs(
    session: AsyncSession, q: str | None, category: str | None, limit: int, offset: int
) -> tuple[int, list[Drug]]:
    stmt = select(Drug)
    if q:
        for term in [t for t in fold(q).split(" ") if t]:
            stmt = stmt.where(
                or_(
                    col(Drug.search_text).contains(term, autoescape=True),
                    func.lower(col(Drug.registration_no)).contains(term, autoescape=True),
                )
            )
    if category:
        stmt = stmt.where(col(Drug.category) == category)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(col(Drug.name), col(Drug.id)).limit(limit).offset(offset))
    return int(total), list(rows.scalars())


# ---- search words ------------------------------------------------------------------------

WORDS = DrugWord.__table__  # type: ignore[attr-defined]
KEYS = DrugWordKey.__table__  # type: ignore[attr-defined]
W = WORDS.c
K = KEYS.c
DRUG = Drug.__table__  # type: ignore[attr-defined]
ROWS_PER_INSERT = 500


@functools.cache
def _words_under_keys(dialect: str) -> Select[Any]:
    return select(K.word).where(one_of(dialect, K.key, "keys")).distinct()


async def words_under_keys(session: AsyncSession, keys: Sequence[str]) -> list[str]:
    """The catalogue words stored under any of these keys."""
    if not keys:
        return []
    result = await session.execute(_words_under_keys(_dialect(session)), {"keys": list(keys)})
    return list(result.scalars())


@functools.cache
def _postings(dialect: str, exact: bool, typos: bool, category: bool) -> Select[Any]:
    wanted = []
    if exact:
        wanted.append(one_of(dialect, W.word, "words"))
    if typos:
        wanted.append(and_(one_of(dialect, W.word, "typo_words"), one_of(dialect, W.field, "typo_fields")))
    stmt = (
        select(W.word, W.drug_id, W.field, W.position, W.length, DRUG.c.name)
        .join(DRUG, DRUG.c.id == W.drug_id)
        .where(or_(*wanted))
    )
    return stmt.where(DRUG.c.category == bindparam("category")) if category else stmt


async def postings_of(
    session: AsyncSession,
    words: Sequence[str],
    typo_words: Sequence[str],
    typo_fields: Sequence[str],
    category: str | None,
) -> list[tuple[Posting, str]]:
    """Postings of `words` in any field and of `typo_words` in `typo_fields`, with the product's name."""
    if not words and not typo_words:
        return []
    stmt = _postings(_dialect(session), bool(words), bool(typo_words), bool(category))
    values: dict[str, Any] = {
        "words": list(words),
        "typo_words": list(typo_words),
        "typo_fields": list(typo_fields),
    }
    if category:
        values["category"] = category
    rows = await session.execute(stmt, {k: v for k, v in values.items() if v})
    return [(Posting(*row[:5]), row[5]) for row in rows]


async def replace_postings(
    session: AsyncSession, drug_ids: Sequence[int] | None, postings: Sequence[Posting]
) -> None:
    """Make `postings` the words of these products (of every product when None)."""
    if drug_ids is None:
        await session.execute(delete(WORDS))
    elif drug_ids:
        await session.execute(delete(WORDS).where(W.drug_id.in_(list(drug_ids))))
    rows = [
        {"word": p.word, "drug_id": p.drug_id, "field": p.field, "position": p.position, "length": p.length}
        for p in postings
    ]
    for start in range(0, len(rows), ROWS_PER_INSERT):
        await session.execute(WORDS.insert(), rows[start : start + ROWS_PER_INSERT])


async def known_words(session: AsyncSession, words: Sequence[str]) -> set[str]:
    """Which of these words already have their keys."""
    found: set[str] = set()
    unique = sorted(set(words))
    for start in range(0, len(unique), ROWS_PER_INSERT):
        part = unique[start : start + ROWS_PER_INSERT]
        found.update(
            (await session.execute(select(K.word).where(K.key.in_(part), K.word == K.key))).scalars()
        )
    return found


async def add_word_keys(session: AsyncSession, rows: Sequence[tuple[str, str]]) -> None:
    """Store (key, word) pairs; pairs stored already (by a concurrent change, say) are skipped."""
    for start in range(0, len(rows), ROWS_PER_INSERT):
        values = [{"key": k, "word": w} for k, w in rows[start : start + ROWS_PER_INSERT]]
        await session.execute(upsert(session, KEYS).values(values).on_conflict_do_nothing())


async def texts_of(session: AsyncSession, drug_ids: Sequence[int] | None) -> list[ProductText]:
    """The searchable fields of these products (every product when None)."""
    stmt = select(
        DRUG.c.id,
        DRUG.c.name,
        DRUG.c.active_ingredient,
        DRUG.c.strength,
        DRUG.c.dosage_form,
        DRUG.c.registration_no,
        DRUG.c.manufacturer,
    ).order_by(DRUG.c.id)
    if drug_ids is not None:
        if not drug_ids:
            return []
        stmt = stmt.where(DRUG.c.id.in_(list(drug_ids)))
    return [ProductText(*row) for row in await session.execute(stmt)]


def drug_ids_in_category_query(category: str | ColumnElement[str]) -> Select[Any]:
    return select(col(Drug.id)).where(col(Drug.category) == category)


async def count_in_category(session: AsyncSession, category: str) -> int:
    stmt = select(func.count()).select_from(Drug).where(col(Drug.category) == category)
    return int((await session.execute(stmt)).scalar_one())
