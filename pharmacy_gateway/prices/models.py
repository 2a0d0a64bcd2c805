"""Tables of listed prices: the current price per outlet and product, and every change to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from kit.database import UTCDateTime, bigint_pk


class PriceListing(SQLModel, table=True):
    """What one outlet currently asks for one product (one row per outlet and product).

    `province_code`, `outlet_kind`, `latitude` and `longitude` copy the outlet's registry row at
    every publication, so the portal's filters and its distance sort are served by this table's
    own indexes without joining a 62,000-row registry on every search.
    """

    __tablename__ = "price_listing"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        # One current price per outlet and product; also serves an outlet's own list.
        Index("uq_price_listing_pharmacy_drug", "pharmacy_id", "drug_id", unique=True),
        # Product page (stats, outlets by price) and searches that resolved `q` to products;
        # pharmacy_id and outlet_kind last let counts that leave out suspended outlets, or keep
        # one kind of outlet, use index-only scans.
        Index("ix_price_listing_drug_price", "drug_id", "price", "id", "pharmacy_id", "outlet_kind"),
        Index(
            "ix_price_listing_province_drug_price",
            "province_code",
            "drug_id",
            "price",
            "id",
            "pharmacy_id",
            "outlet_kind",
        ),
        # Freshest first among the listings of given products (a search sorted by `updated`).
        Index(
            "ix_price_listing_drug_updated_at",
            "drug_id",
            "updated_at",
            "id",
            "pharmacy_id",
            "outlet_kind",
            "province_code",
        ),
        # Browsing without `q`: a page of a sort is read off an index, and the columns the filters
        # test (outlet, kind, province, product) follow the sort key, so the rows a page skips
        # are skipped inside the index (index-only), however deep the page.
        Index(
            "ix_price_listing_price", "price", "id", "pharmacy_id", "outlet_kind", "province_code", "drug_id"
        ),
        Index(
            "ix_price_listing_province_price",
            "province_code",
            "price",
            "id",
            "pharmacy_id",
            "outlet_kind",
            "drug_id",
        ),
        Index(
            "ix_price_listing_updated_at",
            "updated_at",
            "id",
            "pharmacy_id",
            "outlet_kind",
            "province_code",
            "drug_id",
        ),
    )

    id: int | None = Field(default=None, sa_column=bigint_pk())
    pharmacy_id: int = Field(sa_column=Column(Integer, ForeignKey("pharmacy.id"), nullable=False))
    drug_id: int = Field(sa_column=Column(Integer, ForeignKey("drug.id"), nullable=False))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    unit: str = Field(sa_column=Column(String(32), nullable=False))
    province_code: str = Field(sa_column=Column(String(2), nullable=False))
    outlet_kind: str = Field(sa_column=Column(String(16), nullable=False))
    latitude: float | None = None
    longitude: float | None = None
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PriceChange(SQLModel, table=True):
    """Every price an outlet ever listed for a product, appended when it changes."""

    __tablename__ = "price_history"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        Index("ix_price_history_drug_recorded_at", "drug_id", "recorded_at"),
        Index("ix_price_history_pharmacy_drug_recorded_at", "pharmacy_id", "drug_id", "recorded_at"),
    )

    id: int | None = Field(default=None, sa_column=bigint_pk())
    pharmacy_id: int = Field(sa_column=Column(Integer, ForeignKey("pharmacy.id"), nullable=False))
    drug_id: int = Field(sa_column=Column(Integer, ForeignKey("drug.id"), nullable=False))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    unit: str = Field(sa_column=Column(String(32), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PriceCount(SQLModel, table=True):
    """How many listings each province has of each kind of outlet, hidden outlets included.

    Kept by every change to `price_listing`, in the same transaction (publication, bulk loads),
    so a total is exact the moment the change is answered without counting a million rows;
    the listings of hidden (suspended, revoked) outlets are counted and taken off per query.
    """

    __tablename__ = "price_count"
    __table_args__ = (CheckConstraint("listings >= 0", name="listings_not_negative"),)

    province_code: str = Field(sa_column=Column(String(2), primary_key=True))
    outlet_kind: str = Field(sa_column=Column(String(16), primary_key=True))
    listings: int = Field(sa_column=Column(BigInteger, nullable=False))


class PriceDrugCount(SQLModel, table=True):
    """How many listings each product has per province and kind of outlet (like `PriceCount`).

    Totals of searches and of categories add these up, the category read live from the catalogue.
    """

    __tablename__ = "price_drug_count"
    __table_args__ = (CheckConstraint("listings >= 0", name="listings_not_negative"),)

    drug_id: int = Field(sa_column=Column(Integer, ForeignKey("drug.id"), primary_key=True))
    province_code: str = Field(sa_column=Column(String(2), primary_key=True))
    outlet_kind: str = Field(sa_column=Column(String(16), primary_key=True))
    listings: int = Field(sa_column=Column(BigInteger, nullable=False))
