"""A stored prescription as the reverse mappings read it, independent of the database tables.

The lead fills these from `Prescription`, `PrescriptionItem`, `Dispense` and `DispenseLine` rows
(plus the facility, prescriber and pharmacy names); nothing here imports the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class StoredGuardian:
    full_name: str
    national_id: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class StoredPatient:
    full_name: str
    date_of_birth: date
    gender: str  # contract values: male, female, other
    national_id: str | None = None
    insurance_no: str | None = None
    weight_kg: float | None = None
    phone: str | None = None
    address: str | None = None
    guardian: StoredGuardian | None = None


@dataclass(frozen=True)
class StoredDiagnosis:
    icd10: str
    text: str


@dataclass(frozen=True)
class StoredItem:
    """One prescribed line with its running balance.

    `line_id` is what the dialect calls the line's `id`: use `PrescriptionItem.id`, a number that
    is unique nationally (pharmacy programs parse it as a 64-bit integer).
    """

    line_id: int
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
    brand_name: str | None = None  # the catalogue's product name, shown as `biet_duoc`


@dataclass(frozen=True)
class StoredDispenseLine:
    position: int
    line_no: int
    registration_no: str
    quantity: int
    batch_no: str | None = None
    expiry_date: date | None = None
    unit_price: int | None = None


@dataclass(frozen=True)
class StoredDispense:
    dispense_id: str
    created_at: datetime
    pharmacy_code: str
    pharmacy_name: str
    pharmacist_name: str
    pharmacist_license_no: str
    lines: tuple[StoredDispenseLine, ...]
    voided_at: datetime | None = None
    void_reason: str | None = None


@dataclass(frozen=True)
class StoredPrescription:
    code: str
    kind: str
    status: str  # effective status: active, partially_dispensed, dispensed, cancelled, replaced, expired
    facility_code: str
    facility_name: str
    prescriber_id: str
    prescriber_name: str
    prescriber_license_no: str
    issued_at: datetime
    valid_until: datetime
    patient: StoredPatient
    diagnoses: tuple[StoredDiagnosis, ...]
    items: tuple[StoredItem, ...]
    notes: str | None = None
    follow_up_date: date | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    cancel_reason: str | None = None
    sensitive: bool = False  # HIV/AIDS: never named to a pharmacy
    dispenses: tuple[StoredDispense, ...] = ()
