"""Tables of prescriptions: the signed record and its lines with their dispensed quantities."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
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

from kit.database import BIGINT, UTCDateTime, bigint_pk


class Prescription(SQLModel, table=True):
    __tablename__ = "prescription"
    __table_args__ = (
        Index("ix_prescription_facility_code_issued_at", "facility_code", "issued_at"),
        Index("ix_prescription_prescriber_id_issued_at", "prescriber_id", "issued_at"),
        # A facility finds a patient's earlier prescriptions by insurance number, or by name and
        # date of birth (the citizen ID has its own index).
        Index("ix_prescription_patient_insurance_no", "patient_insurance_no"),
        Index(
            "ix_prescription_facility_code_patient_date_of_birth", "facility_code", "patient_date_of_birth"
        ),
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
    # As printed on the day it was signed, whatever the registry says later.
    prescriber_name: str = Field(max_length=200)
    facility_name: str = Field(max_length=300)
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
    # The parent's code: the distribution column on Citus, so lines live on their prescription's shard.
    prescription_code: str = Field(sa_column=Column(String(14), nullable=False))
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


class PrescriptionPayload(SQLModel, table=True):
    """Each signed payload accepted, keyed by its digest: a replay is refused whatever code it gets.

    Keyed (and, on Citus, distributed) by the digest itself, so the uniqueness the design relies
    on never spans shards; the prescription row lives on its code's shard.
    """

    __tablename__ = "prescription_payload"

    payload_digest: str = Field(sa_column=Column(String(64), primary_key=True))
    prescription_code: str = Field(sa_column=Column(String(14), nullable=False))
