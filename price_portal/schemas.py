"""Bodies of price publication and of the public portal's JSON API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

MAX_ITEMS_PER_REQUEST = 5000
# A sanity bound, not a policy: no retail unit costs ten billion dong.
MAX_PRICE = 10_000_000_000

PriceSort = Literal["price", "-price", "updated"]
OutletSort = Literal["price", "distance"]
Category = Literal["normal", "narcotic", "psychotropic", "precursor", "traditional", "supplement"]
OutletKind = Literal["pharmacy", "drugstore", "cabinet"]


# ---- publication (pharmacy token) --------------------------------------------------------


class PriceItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    registration_no: Annotated[str, Field(min_length=1, max_length=64, examples=["VD-15841-13"])]
    price: Annotated[StrictInt, Field(gt=0, le=MAX_PRICE, description="Integer dong per unit")]
    unit: Annotated[str, Field(min_length=1, max_length=32, examples=["viên"])]


class PriceListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[PriceItemIn], Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)]


class PublishResult(BaseModel):
    accepted: int = Field(description="Items in the request")
    created: int = Field(description="Products this outlet listed for the first time")
    changed: int = Field(description="Listed prices that changed (a history entry each)")
    unchanged: int = Field(description="Prices confirmed as they were (only the date moves)")
    updated_at: str


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
