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
        # Browsing without `q`: the first page of a sort is read straight off an index.
        Index("ix_price_listing_price", "price", "id"),
        Index("ix_price_listing_province_price", "province_code", "price", "id"),
        Index("ix_price_listing_updated_at", "updated_at", "id"),
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
