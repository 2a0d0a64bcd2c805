"""Request and response bodies of lookups and dispensing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, computed_field

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


# ---- short receipt numbers -------------------------------------------------------------------

# Crockford's base 32: no I, L, O or U, so a number read aloud or typed back is not misread.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECEIPT_HEX_DIGITS = 10  # 40 bits of the random dispense id: 8 characters


def receipt_number(dispense_id: str) -> str:
    """The short number printed on a receipt (`K7Q2-M9XA`): the first 40 bits of the dispense id.

    Derived, not stored: the id is random (uuid4), so two receipts of one pharmacy share a
    number about once in a trillion; the number leads back to its id's prefix.
    """
    value = int(dispense_id[:RECEIPT_HEX_DIGITS], 16)
    chars = "".join(CROCKFORD[(value >> shift) & 31] for shift in range(35, -1, -5))
    return f"{chars[:4]}-{chars[4:]}"


def receipt_id_prefix(number: str) -> str | None:
    """The dispense-id prefix a typed receipt number stands for (case, `-`, O/0 and I/L/1 forgiven)."""
    cleaned = number.strip().upper().replace("-", "").replace(" ", "")
    cleaned = cleaned.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(cleaned) != 8 or any(c not in CROCKFORD for c in cleaned):
        return None
    value = 0
    for c in cleaned:
        value = value * 32 + CROCKFORD.index(c)
    return f"{value:0{RECEIPT_HEX_DIGITS}x}"


class DispenseView(BaseModel):
    dispense_id: str
    prescription_code: str
    created_at: str
    pharmacist: Pharmacist
    voided: bool
    voided_at: str | None
    void_reason: str | None
    items: list[DispensedLineView]

    @computed_field(description="The short number printed on the receipt, derived from dispense_id")  # type: ignore[prop-decorator]
    @property
    def receipt_no(self) -> str:
        return receipt_number(self.dispense_id)

    @property
    def total(self) -> int | None:
        """What the sale cost, or None when a line was sold without a unit price."""
        if any(line.unit_price is None for line in self.items):
            return None
        return sum((line.unit_price or 0) * line.quantity for line in self.items)


@dataclass(frozen=True)
class SalesTotals:
    """What a period's sales add up to; voided sales are counted apart and add nothing."""

    sales: int
    voided: int
    units: int
    revenue: int
    unpriced_lines: int

    @classmethod
    def of(cls, views: Sequence[DispenseView]) -> SalesTotals:
        kept = [v for v in views if not v.voided]
        lines = [line for v in kept for line in v.items]
        return cls(
            sales=len(kept),
            voided=len(views) - len(kept),
            units=sum(line.quantity for line in lines),
            revenue=sum((line.unit_price or 0) * line.quantity for line in lines),
            unpriced_lines=sum(1 for line in lines if line.unit_price is None),
        )


class DispensePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[DispenseView]
