"""Listing filters as SQL, shared by every query of listed prices.

Statements are built once per shape of filter (which conditions it has, not their values) and
take the values as parameters, so a search pays neither for building nor for compiling SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kit.database import one_of
from kit.prepared import Prepared
from pharmacy_gateway.prices.models import PriceChange, PriceCount, PriceDrugCount, PriceListing
from pharmacy_gateway.prices.schemas import Listing, ListingFilter

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


def listings(rows: Any) -> list[Listing]:
    return [Listing(*row) for row in rows]


@dataclass(frozen=True)
class Shape:
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


def shape_of(dialect: str, where: ListingFilter) -> Shape:
    return Shape(
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


def conditions(shape: Shape, columns: Any = L) -> list[ColumnElement[bool]]:
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
    return stmt.where(*conditions(shape_of(dialect, where)))


def dialect_of(session: AsyncSession | AsyncConnection) -> str:
    return session.get_bind().dialect.name if isinstance(session, AsyncSession) else session.dialect.name


def not_hidden(where: ListingFilter) -> Any:
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


async def shaped_rows(
    session: AsyncSession, shape: Shape, statement: Select[Any], values: Mapping[str, Any]
) -> Any:
    """The rows of a statement kept per shape; on PostgreSQL sent straight to the driver.

    A portal search is one such statement; SQLAlchemy's execution path (its cache key walks the
    whole statement, every time) cost about a tenth of the request (kit/prepared.py).
    """
    if shape.dialect == "postgresql":
        return await _prepared(statement).rows(session, values)
    return (await session.execute(statement, values)).all()
