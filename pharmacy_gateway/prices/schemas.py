"""Bodies of price publication, and the price records the public side reads through the service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictInt
from sqlalchemy import Select

from kit.fields import Strict

MAX_ITEMS_PER_REQUEST = 5000
# A sanity bound, not a policy: no retail unit costs ten billion dong.
MAX_PRICE = 10_000_000_000


class PriceSort(StrEnum):
    PRICE = "price"
    PRICE_DESC = "-price"
    UPDATED = "updated"


# ---- publication (pharmacy token) --------------------------------------------------------


class PriceItemIn(Strict):
    registration_no: Annotated[str, Field(min_length=1, max_length=64, examples=["VD-15841-13"])]
    price: Annotated[StrictInt, Field(gt=0, le=MAX_PRICE, description="Integer dong per unit")]
    unit: Annotated[str, Field(min_length=1, max_length=32, examples=["viên"])]


class PriceListIn(Strict):
    items: Annotated[list[PriceItemIn], Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)]


class PublishResult(BaseModel):
    accepted: int = Field(description="Items in the request")
    created: int = Field(description="Products this outlet listed for the first time")
    changed: int = Field(description="Listed prices that changed (a history entry each)")
    unchanged: int = Field(description="Prices confirmed as they were (only the date moves)")
    updated_at: str


@dataclass(frozen=True)
class PublishReport:
    accepted: int
    created: int
    changed: int
    unchanged: int
    at: datetime


# ---- what the public side reads -------------------------------------------------------------

# What the listing counts are kept by: (product id, province code, outlet kind).
CountKey = tuple[int, str, str]


@dataclass(frozen=True, slots=True)
class Listing:
    """What one outlet currently asks for one product."""

    id: int
    pharmacy_id: int
    drug_id: int
    price: int
    unit: str
    province_code: str
    outlet_kind: str
    latitude: float | None
    longitude: float | None
    updated_at: datetime


@dataclass(frozen=True)
class ListingFilter:
    """Which listings a query sees. `drug_ids` None means every product.

    `category` keeps the products of one catalogue category, read live through `categories`
    (the catalogue's query of them, taking the category as the parameter `category`); outlets
    to hide come as a subquery of their ids (suspended and revoked outlets, read live).
    `category_size`, about how many products the category has, only chooses the plan of a page.
    """

    drug_ids: Sequence[int] | None = None
    category: str | None = None
    categories: Select[Any] | None = None
    category_size: int | None = None
    province: str | None = None
    kind: str | None = None
    hidden_outlets_query: Select[Any] | None = None
    pharmacy_id: int | None = None


@dataclass(frozen=True)
class PriceStats:
    min: int | None
    median: int | None
    max: int | None
    outlets: int


@dataclass(frozen=True)
class DayStats:
    day: date
    min: int
    median: int
    max: int
    outlets: int


@dataclass(frozen=True)
class BasketLine:
    """One remaining prescription line: the products that may fill it and how many units remain."""

    drug_ids: list[int]
    quantity: int


@dataclass(frozen=True)
class BasketTotal:
    pharmacy_id: int
    covered: int
    total: int
