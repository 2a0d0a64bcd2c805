"""Queries of the drug catalogue; nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from eprescribe.catalogue.models import Drug
from eprescribe.catalogue.schemas import ProductKey
from kit.text import fold

CHEAPEST_FIRST = (col(Drug.declared_price).nulls_last(), col(Drug.name))


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def get_drug(session: AsyncSession, registration_no: str) -> Drug | None:
    result = await session.execute(select(Drug).where(col(Drug.registration_no) == registration_no))
    return result.scalar_one_or_none()


async def drugs_by_registration(session: AsyncSession, numbers: Sequence[str]) -> list[Drug]:
    if not numbers:
        return []
    result = await session.execute(select(Drug).where(col(Drug.registration_no).in_(numbers)))
    return list(result.scalars())


async def drugs_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Drug]:
    if not ids:
        return []
    result = await session.execute(select(Drug).where(col(Drug.id).in_(ids)))
    return list(result.scalars())


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


async def drugs_matching_words(
    session: AsyncSession, terms: Sequence[str], category: str | None, limit: int
) -> list[Drug]:
    """Products whose folded text has a word starting with each term (digits: anywhere)."""
    stmt = select(Drug)
    for term in terms:
        escaped = _like_escape(term)
        if any(ch.isdigit() for ch in term):
            stmt = stmt.where(col(Drug.search_text).like(f"%{escaped}%", escape="\\"))
        else:
            stmt = stmt.where(
                or_(
                    col(Drug.search_text).like(f"{escaped}%", escape="\\"),
                    col(Drug.search_text).like(f"% {escaped}%", escape="\\"),
                )
            )
    if category:
        stmt = stmt.where(col(Drug.category) == category)
    result = await session.execute(stmt.order_by(col(Drug.name), col(Drug.id)).limit(limit))
    return list(result.scalars())


async def drugs_similar_words(
    session: AsyncSession, terms: Sequence[str], category: str | None, limit: int
) -> list[Drug]:
    """PostgreSQL with pg_trgm: products whose text holds a word similar to every term."""
    stmt = select(Drug)
    for term in terms:
        # `text %> term` is word_similarity(term, text) >= pg_trgm.word_similarity_threshold
        # (0.6 by default), and the GIN trigram index on search_text serves it.
        stmt = stmt.where(col(Drug.search_text).bool_op("%>")(term))
    if category:
        stmt = stmt.where(col(Drug.category) == category)
    if terms:
        score: ColumnElement[float] = func.word_similarity(terms[0], col(Drug.search_text))
        for term in terms[1:]:
            score = score + func.word_similarity(term, col(Drug.search_text))
        stmt = stmt.order_by(score.desc())
    result = await session.execute(stmt.order_by(col(Drug.name), col(Drug.id)).limit(limit))
    return list(result.scalars())


async def trigram_search_available(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    result = await session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    return result.first() is not None


async def drug_search_texts(session: AsyncSession, category: str | None) -> list[tuple[int, str]]:
    stmt = select(col(Drug.id), col(Drug.search_text))
    if category:
        stmt = stmt.where(col(Drug.category) == category)
    result = await session.execute(stmt)
    return [(int(row[0] or 0), str(row[1])) for row in result]


def drug_ids_in_category_query(category: str) -> Select[Any]:
    return select(col(Drug.id)).where(col(Drug.category) == category)


async def drug_ids_in_category(session: AsyncSession, category: str, limit: int) -> list[int]:
    result = await session.execute(drug_ids_in_category_query(category).limit(limit))
    return [int(i) for i in result.scalars() if i is not None]
