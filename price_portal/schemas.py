"""Answers of the public portal's JSON API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from eprescribe.catalogue.schemas import DrugCategory
from eprescribe.registry.schemas import PharmacyKind
from pharmacy_gateway.prices.schemas import PriceSort

MAX_LIMIT = 100
MAX_OFFSET = 10_000
# Listings change when pharmacies publish; a minute of staleness lets caches carry the load.
JSON_MAX_AGE = 60
CSV_MAX_AGE = 300
SORTS = tuple(PriceSort)
KINDS = tuple(PharmacyKind)
ALL_CATEGORIES = tuple(DrugCategory)

# ---- public answers ----------------------------------------------------------------------


class DrugRef(BaseModel):
    registration_no: str
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    category: str


class OutletRef(BaseModel):
    id: int
    name: str
    kind: str
    address: str
    province_code: str


class PriceRowOut(BaseModel):
    drug: DrugRef
    outlet: OutletRef
    price: int
    unit: str
    updated_at: str


class PricePage(BaseModel):
    total: int
    items: list[PriceRowOut]
    limit: int
    offset: int
    fuzzy: bool = Field(description="`q` matched nothing exactly and was read as a typo")


class PriceStats(BaseModel):
    min: int | None
    median: int | None
    max: int | None
    outlets: int


class AlternativeOut(DrugRef):
    unit: str
    declared_price: int | None
    min_price: int | None = Field(description="Lowest listed price, if any outlet lists it")
    outlets: int


class ProductOut(DrugRef):
    unit: str
    packaging: str | None
    manufacturer: str | None
    country: str | None
    declared_price: int | None
    stats: PriceStats
    alternatives: list[AlternativeOut]


class OutletDetail(OutletRef):
    latitude: float | None
    longitude: float | None


class OutletPriceOut(BaseModel):
    outlet: OutletDetail
    price: int
    unit: str
    updated_at: str
    above_declared: bool
    distance_km: float | None
    paid_median_30d: int | None = Field(
        description="Median unit price actually paid there over 30 days (enough sales only)"
    )
    paid_sales_30d: int | None


class OutletPricePage(BaseModel):
    total: int
    items: list[OutletPriceOut]
    limit: int
    offset: int


class HistoryPoint(BaseModel):
    date: str
    min: int
    median: int
    max: int
    outlets: int


class HistoryOut(BaseModel):
    registration_no: str
    declared_price: int | None
    points: list[HistoryPoint]


class OutletListingOut(BaseModel):
    drug: DrugRef
    price: int
    unit: str
    updated_at: str
    declared_price: int | None
    above_declared: bool


class OutletOut(OutletDetail):
    total: int
    items: list[OutletListingOut]
    limit: int
    offset: int
