"""Request and response bodies of lookups and dispensing."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from kit.fields import SafeDate, Strict

# ---- lookup --------------------------------------------------------------------------------


class PatientSummary(BaseModel):
    """Only what a pharmacist needs: no identity or insurance numbers, the year of birth."""

    full_name: str
    gender: str
    birth_year: int


class Substitute(BaseModel):
    """A registered product the pharmacist may dispense for the line (generic substitution)."""

    registration_no: str
    name: str
    unit: str
    declared_price: int | None


class GatewayItem(BaseModel):
    line_no: int
    active_ingredient: str
    strength: str
    dosage_form: str
    registration_no: str | None
    quantity: int
    unit: str
    instructions: str
    days_supply: int
    dispensed: int
    remaining: int
    substitutes: list[Substitute]


class GatewayPrescription(BaseModel):
    code: str
    kind: str
    status: str
    issued_at: str
    valid_until: str
    facility_code: str
    facility_name: str
    prescriber_name: str
    replaced_by: str | None
    patient: PatientSummary
    items: list[GatewayItem]
    qr_verified: bool | None = Field(
        description="Whether the scanned QR's national signature matches the record; null for a typed code"
    )


# ---- dispensing ----------------------------------------------------------------------------


class Pharmacist(Strict):
    full_name: Annotated[str, Field(min_length=1, max_length=200)]
    license_no: Annotated[str, Field(min_length=3, max_length=64)]


class DispenseItem(Strict):
    line_no: Annotated[StrictInt, Field(ge=1, le=1000)]
    registration_no: Annotated[str, Field(min_length=3, max_length=64)]
    quantity: Annotated[StrictInt, Field(gt=0, le=100_000)]
    unit_price: Annotated[StrictInt, Field(ge=0, le=1_000_000_000_000)] | None = None
    batch_no: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    expiry_date: SafeDate | None = None


class DispenseCreate(Strict):
    """One handing-over; a line may appear more than once (two batches or brands): quantities add up."""

    pharmacist: Pharmacist
    items: Annotated[list[DispenseItem], Field(min_length=1, max_length=100)]


class LineBalance(BaseModel):
    line_no: int
    dispensed: int
    remaining: int


class DispenseCreated(BaseModel):
    dispense_id: str
    prescription_status: str
    items: list[LineBalance]


class VoidRequest(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class DispenseVoided(BaseModel):
    dispense_id: str
    voided_at: str
    prescription_status: str
    items: list[LineBalance]


# ---- history -------------------------------------------------------------------------------


class DispensedLineView(BaseModel):
    line_no: int
    registration_no: str
    quantity: int
    unit_price: int | None
    batch_no: str | None
    expiry_date: date | None


class DispenseView(BaseModel):
    dispense_id: str
    prescription_code: str
    created_at: str
    pharmacist: Pharmacist
    voided: bool
    voided_at: str | None
    void_reason: str | None
    items: list[DispensedLineView]


class DispensePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[DispenseView]
