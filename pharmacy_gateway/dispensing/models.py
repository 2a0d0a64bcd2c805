"""Tables of the gateway: dispenses and their lines."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from kit.database import BIGINT, UTCDateTime, bigint_pk


class Dispense(SQLModel, table=True):
    """One handing-over of medicines by a pharmacy against one prescription."""

    __tablename__ = "dispense"
    __table_args__ = (Index("ix_dispense_pharmacy_id_created_at", "pharmacy_id", "created_at"),)

    id: int | None = Field(default=None, sa_column=bigint_pk())
    dispense_id: str = Field(max_length=32, sa_column_kwargs={"unique": True})
    pharmacy_id: int = Field(sa_column=Column(Integer, ForeignKey("pharmacy.id"), nullable=False))
    prescription_id: int = Field(
        sa_column=Column(BIGINT, ForeignKey("prescription.id"), nullable=False, index=True)
    )
    prescription_code: str = Field(sa_column=Column(String(14), nullable=False))
    pharmacist_full_name: str = Field(max_length=200)
    pharmacist_license_no: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    voided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    void_reason: str | None = Field(default=None, max_length=500)


class DispenseLine(SQLModel, table=True):
    """A quantity of one prescription line handed over, with the product and batch actually given.

    A line may appear several times in one dispense (two batches, or two brands of the same
    generic), so rows are numbered by `position` within the dispense.
    """

    __tablename__ = "dispense_line"
    __table_args__ = (
        UniqueConstraint("dispense_id", "position"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price IS NULL OR unit_price >= 0", name="unit_price_not_negative"),
        # Serves paid_price_medians: one product's priced sales over a period.
        Index("ix_dispense_line_registration_no_dispense_id", "registration_no", "dispense_id"),
    )

    id: int | None = Field(default=None, sa_column=bigint_pk())
    dispense_id: int = Field(sa_column=Column(BIGINT, ForeignKey("dispense.id"), nullable=False))
    # The prescription's code: the distribution column on Citus (with its dispense and prescription).
    prescription_code: str = Field(sa_column=Column(String(14), nullable=False))
    position: int = Field(sa_column=Column(Integer, nullable=False))
    line_no: int = Field(sa_column=Column(Integer, nullable=False))
    registration_no: str = Field(max_length=64)
    quantity: int = Field(sa_column=Column(Integer, nullable=False))
    unit_price: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    batch_no: str | None = Field(default=None, max_length=64)
    expiry_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
