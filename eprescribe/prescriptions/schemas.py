"""The signed prescription payload, the bodies of the prescriptions API, and the records
other modules receive from its service."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, StrictFloat, StrictInt, field_validator

from eprescribe.catalogue.schemas import ProductKey
from eprescribe.registry.schemas import FacilityCode
from kit.fields import PersonName, SafeDate, Strict


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


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"


# Narcotic and psychotropic prescriptions: controlled prescribers and licensed outlets only.
CONTROLLED_KINDS = frozenset({PrescriptionKind.NARCOTIC, PrescriptionKind.PSYCHOTROPIC})
# A pharmacy may still hand something over against these.
DISPENSABLE = frozenset({PrescriptionStatus.ACTIVE, PrescriptionStatus.PARTIALLY_DISPENSED})
# Statuses the lines decide; a cancelled or replaced prescription keeps its own.
LEDGER_STATUSES = frozenset(
    {PrescriptionStatus.ACTIVE, PrescriptionStatus.PARTIALLY_DISPENSED, PrescriptionStatus.DISPENSED}
)


# ---- the signed prescription payload -----------------------------------------------------


class Guardian(Strict):
    full_name: PersonName
    national_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{8,15}$")] | None = None


class Patient(Strict):
    full_name: PersonName
    date_of_birth: SafeDate
    gender: Gender
    national_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    insurance_no: Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9]{13}$")] | None = None
    weight_kg: Annotated[StrictFloat, Field(gt=0, le=400)] | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{8,15}$")] | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    guardian: Guardian | None = None


class Diagnosis(Strict):
    icd10: Annotated[str, Field(pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")]
    text: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("icd10", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


class PrescribedItem(Strict):
    active_ingredient: Annotated[str, Field(min_length=1, max_length=500)]
    strength: Annotated[str, Field(min_length=1, max_length=200)]
    dosage_form: Annotated[str, Field(min_length=1, max_length=200)]
    registration_no: Annotated[str, Field(min_length=3, max_length=64)] | None = None
    quantity: Annotated[StrictInt, Field(gt=0, le=100_000)]
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    instructions: Annotated[str, Field(min_length=1, max_length=1000)]
    days_supply: Annotated[StrictInt, Field(gt=0, le=366)]


class PrescriptionPayload(Strict):
    """What the prescriber signs (the JWS payload of the contract)."""

    code: Annotated[str, Field(min_length=14, max_length=14)] | None = None
    kind: PrescriptionKind
    replaces: Annotated[str, Field(min_length=14, max_length=14)] | None = None
    facility_code: FacilityCode
    issued_at: AwareDatetime
    patient: Patient
    diagnoses: Annotated[list[Diagnosis], Field(min_length=1, max_length=20)]
    items: Annotated[list[PrescribedItem], Field(min_length=1, max_length=50)]
    notes: Annotated[str, Field(max_length=2000)] | None = None
    follow_up_date: SafeDate | None = None


class PrescriptionSubmit(Strict):
    jws: Annotated[str, Field(min_length=10, max_length=200_000)]


class PrescriptionCreated(BaseModel):
    code: str
    status: str
    valid_until: str
    qr_png: str
    qr_svg: str


class CancelRequest(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ItemView(BaseModel):
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


class PrescriptionView(BaseModel):
    code: str
    kind: str
    status: str
    facility_code: str
    prescriber_id: str
    prescriber_name: str
    issued_at: str
    valid_until: str
    replaces: str | None
    replaced_by: str | None
    patient: dict[str, Any]
    diagnoses: list[dict[str, Any]]
    items: list[ItemView]
    notes: str | None
    follow_up_date: date | None
    cancelled_at: str | None
    cancel_reason: str | None
    jws: str
    qr_text: str
    qr_png: str
    qr_svg: str
    # For the patient's copy only: their page's link (access key included) and the key itself.
    patient_url: str
    patient_access_key: str


class AccessLogView(BaseModel):
    at: str
    actor_kind: str
    actor_code: str
    action: str


# ---- records handed to other modules ---------------------------------------------------------


def status_at(status: str, valid_until: datetime, now: datetime) -> str:
    """`expired` is derived: an undispensed or partly dispensed prescription past valid_until."""
    if status in DISPENSABLE and now > valid_until:
        return PrescriptionStatus.EXPIRED.value
    return str(status)


@dataclass(frozen=True, slots=True)
class Line:
    """One prescribed line and how much of it was handed over."""

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
    key: ProductKey


@dataclass(frozen=True, slots=True)
class PatientRecord:
    full_name: str
    date_of_birth: date
    gender: str
    national_id: str | None
    insurance_no: str | None
    weight_kg: float | None
    phone: str | None
    address: str | None
    guardian: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PrescriptionRecord:
    """A prescription as other modules see it (the prescriber's JWS stays inside this module)."""

    id: int
    code: str
    kind: str
    status: str
    facility_code: str
    prescriber_id: str
    # As printed on the prescription: the names of the day it was signed.
    prescriber_name: str
    facility_name: str
    issued_at: datetime
    valid_until: datetime
    replaces_code: str | None
    replaced_by_code: str | None
    patient: PatientRecord
    diagnoses: list[dict[str, Any]]
    notes: str | None
    follow_up_date: date | None
    sensitive: bool
    lines: tuple[Line, ...]

    def status_at(self, now: datetime) -> str:
        return status_at(self.status, self.valid_until, now)


@dataclass(frozen=True, slots=True)
class SignedFacts:
    """What a signed payload names of the record stored from it, read as its door read it."""

    facility_code: str
    kind: str
    code: str | None = None  # None: the payload names no code (the service drew one)


@dataclass(frozen=True, slots=True)
class SignedForm:
    """A form other than the contract's payload that a door accepts signed (a QĐ 808 body, a FHIR Bundle).

    `recognises` tells its payloads from every other form's (each form refuses the others'
    distinguishing fields when it is admitted); `facts` reads one the way its door mapped it
    when it came, raising ValueError when it cannot.
    """

    name: str
    recognises: Callable[[Mapping[str, Any]], bool]
    facts: Callable[[Mapping[str, Any]], SignedFacts]
