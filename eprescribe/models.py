"""Tables of the registry (clients, catalogue) and of prescriptions."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from erx.database import BIGINT, UTCDateTime, bigint_pk


class ClientStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class PharmacyKind(StrEnum):
    PHARMACY = "pharmacy"
    DRUGSTORE = "drugstore"
    CABINET = "cabinet"


class DrugCategory(StrEnum):
    NORMAL = "normal"
    NARCOTIC = "narcotic"
    PSYCHOTROPIC = "psychotropic"
    PRECURSOR = "precursor"
    TRADITIONAL = "traditional"
    SUPPLEMENT = "supplement"


class PrescriptionKind(StrEnum):
    ORDINARY = "c"
    NARCOTIC = "n"
    PSYCHOTROPIC = "h"
    TRADITIONAL = "y"
    DECOCTION = "t"


class PrescriptionStatus(StrEnum):
    ACTIVE = "active"
    PARTIALLY_DISPENSED = "partially_dispensed"
    DISPENSED = "dispensed"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    EXPIRED = "expired"  # never stored: derived from valid_until when read


class AdminClient(SQLModel, table=True):
    """A health-department client of the registry API."""

    __tablename__ = "admin_client"

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    secret_hash: str = Field(max_length=200)
    status: str = Field(default=ClientStatus.ACTIVE, max_length=16)
    credentials_version: int = Field(default=1)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Facility(SQLModel, table=True):
    __tablename__ = "facility"

    facility_code: str = Field(primary_key=True, max_length=5)
    name: str = Field(max_length=300)
    province_code: str = Field(max_length=2)
    secret_hash: str = Field(max_length=200)
    status: str = Field(default=ClientStatus.ACTIVE, max_length=16)
    credentials_version: int = Field(default=1)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Prescriber(SQLModel, table=True):
    __tablename__ = "prescriber"

    prescriber_id: str = Field(primary_key=True, max_length=16)
    full_name: str = Field(max_length=200)
    license_no: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    key_thumbprint: str = Field(max_length=64)
    controlled_allowed: bool = Field(sa_column=Column(Boolean, nullable=False))
    status: str = Field(default=ClientStatus.ACTIVE, max_length=16)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PrescriberFacility(SQLModel, table=True):
    __tablename__ = "prescriber_facility"

    prescriber_id: str = Field(
        sa_column=Column(String(16), ForeignKey("prescriber.prescriber_id"), primary_key=True)
    )
    facility_code: str = Field(
        sa_column=Column(String(5), ForeignKey("facility.facility_code"), primary_key=True)
    )


class Pharmacy(SQLModel, table=True):
    __tablename__ = "pharmacy"

    id: int | None = Field(default=None, primary_key=True)
    connection_code: str = Field(max_length=16, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=300)
    kind: str = Field(max_length=16)
    province_code: str = Field(max_length=2, index=True)
    address: str = Field(max_length=500)
    latitude: float | None = None
    longitude: float | None = None
    controlled_licence: bool = Field(sa_column=Column(Boolean, nullable=False))
    secret_hash: str = Field(max_length=200)
    status: str = Field(default=ClientStatus.ACTIVE, max_length=16)
    credentials_version: int = Field(default=1)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Drug(SQLModel, table=True):
    """A registered product of the national catalogue (or a notified health supplement)."""

    __tablename__ = "drug"
    __table_args__ = (Index("ix_drug_substitution", "ingredient_key", "strength_key", "form_key"),)

    id: int | None = Field(default=None, primary_key=True)
    registration_no: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=300)
    active_ingredient: str = Field(max_length=500)
    strength: str = Field(max_length=200)
    dosage_form: str = Field(max_length=200)
    unit: str = Field(max_length=32)
    packaging: str | None = Field(default=None, max_length=300)
    manufacturer: str | None = Field(default=None, max_length=300)
    country: str | None = Field(default=None, max_length=100)
    category: str = Field(max_length=16, index=True)
    declared_price: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Folded forms (no diacritics, no spaces) for matching and for diacritic-blind search.
    ingredient_key: str = Field(max_length=500)
    strength_key: str = Field(max_length=200)
    form_key: str = Field(max_length=200)
    search_text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Prescription(SQLModel, table=True):
    __tablename__ = "prescription"
    __table_args__ = (
        Index("ix_prescription_facility_code_issued_at", "facility_code", "issued_at"),
        Index("ix_prescription_prescriber_id_issued_at", "prescriber_id", "issued_at"),
    )

    id: int | None = Field(default=None, sa_column=bigint_pk())
    code: str = Field(max_length=14, sa_column_kwargs={"unique": True})
    kind: str = Field(max_length=1)
    status: str = Field(max_length=24)
    facility_code: str = Field(
        sa_column=Column(String(5), ForeignKey("facility.facility_code"), nullable=False)
    )
    prescriber_id: str = Field(
        sa_column=Column(String(16), ForeignKey("prescriber.prescriber_id"), nullable=False)
    )
    issued_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    valid_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    replaces_code: str | None = Field(default=None, max_length=14)
    replaced_by_code: str | None = Field(default=None, max_length=14)
    patient_full_name: str = Field(max_length=200)
    patient_date_of_birth: date = Field(sa_column=Column(Date, nullable=False))
    patient_gender: str = Field(max_length=8)
    patient_national_id: str | None = Field(default=None, max_length=12, index=True)
    patient_insurance_no: str | None = Field(default=None, max_length=15)
    patient_weight_kg: float | None = None
    patient_phone: str | None = Field(default=None, max_length=20)
    patient_address: str | None = Field(default=None, max_length=500)
    guardian: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    diagnoses: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    follow_up_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    # HIV/AIDS data is never shown to pharmacies or the public.
    sensitive: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # The prescriber's JWS exactly as received, so anyone can verify it again later.
    jws: str = Field(sa_column=Column(Text, nullable=False))
    payload_digest: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    lines_digest: str = Field(max_length=64)
    qr_text: str = Field(sa_column=Column(Text, nullable=False))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    cancel_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PrescriptionItem(SQLModel, table=True):
    __tablename__ = "prescription_item"
    __table_args__ = (
        UniqueConstraint("prescription_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        CheckConstraint("dispensed >= 0", name="dispensed_not_negative"),
        CheckConstraint("dispensed + remaining = quantity", name="quantities_balance"),
    )

    id: int | None = Field(default=None, sa_column=bigint_pk())
    prescription_id: int = Field(sa_column=Column(BIGINT, ForeignKey("prescription.id"), nullable=False))
    line_no: int = Field(sa_column=Column(Integer, nullable=False))
    active_ingredient: str = Field(max_length=500)
    strength: str = Field(max_length=200)
    dosage_form: str = Field(max_length=200)
    registration_no: str | None = Field(default=None, max_length=64)
    quantity: int = Field(sa_column=Column(Integer, nullable=False))
    unit: str = Field(max_length=32)
    instructions: str = Field(max_length=1000)
    days_supply: int = Field(sa_column=Column(Integer, nullable=False))
    dispensed: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    remaining: int = Field(sa_column=Column(Integer, nullable=False))
    ingredient_key: str = Field(max_length=500)
    strength_key: str = Field(max_length=200)
    form_key: str = Field(max_length=200)
