"""Request and response bodies of the core API, and the signed prescription payload."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from eprescribe.models import DrugCategory, PharmacyKind

VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")


def vn_time(value: datetime) -> str:
    """Render an instant in Vietnam time (UTC+7, no daylight saving) as ISO 8601."""
    return value.astimezone(VIETNAM_TIME).isoformat()


FacilityCode = Annotated[str, Field(pattern=r"^[0-9A-Z]{5}$", examples=["01001"])]
ProvinceCode = Annotated[str, Field(pattern=r"^[0-9]{2}$", examples=["01"])]
NonEmpty = Annotated[str, Field(min_length=1, max_length=300)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---- credentials -------------------------------------------------------------------------


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


# ---- registry ----------------------------------------------------------------------------


class FacilityCreate(Strict):
    name: NonEmpty
    province_code: ProvinceCode
    facility_code: FacilityCode | None = None


class FacilityCreated(BaseModel):
    facility_code: str
    client_secret: str


class PublicJwk(BaseModel):
    model_config = ConfigDict(extra="allow")
    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str
    y: str


class PrescriberCreate(Strict):
    full_name: NonEmpty
    license_no: Annotated[str, Field(min_length=3, max_length=64)]
    facility_codes: Annotated[list[FacilityCode], Field(min_length=1, max_length=50)]
    public_jwk: dict[str, Any]
    controlled_allowed: bool = False


class PrescriberKey(Strict):
    public_jwk: dict[str, Any]


class PrescriberCreated(BaseModel):
    prescriber_id: str


class PharmacyCreate(Strict):
    name: NonEmpty
    kind: PharmacyKind
    province_code: ProvinceCode
    address: Annotated[str, Field(min_length=1, max_length=500)]
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    controlled_licence: bool = False


class PharmacyCreated(BaseModel):
    connection_code: str
    client_secret: str


class ClientStatusView(BaseModel):
    connection_code: str
    status: str


class SecretRotated(BaseModel):
    connection_code: str
    client_secret: str


class DrugCreate(Strict):
    registration_no: Annotated[str, Field(min_length=3, max_length=64)]
    name: NonEmpty
    active_ingredient: Annotated[str, Field(min_length=1, max_length=500)]
    strength: Annotated[str, Field(min_length=1, max_length=200)]
    dosage_form: Annotated[str, Field(min_length=1, max_length=200)]
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    category: DrugCategory
    declared_price: Annotated[StrictInt, Field(gt=0)] | None = None
    packaging: Annotated[str, Field(max_length=300)] | None = None
    manufacturer: Annotated[str, Field(max_length=300)] | None = None
    country: Annotated[str, Field(max_length=100)] | None = None


class DrugPublic(BaseModel):
    registration_no: str
    name: str
    active_ingredient: str
    strength: str
    dosage_form: str
    unit: str
    category: str
    declared_price: int | None
    packaging: str | None = None
    manufacturer: str | None = None
    country: str | None = None


class DrugPage(BaseModel):
    total: int
    items: list[DrugPublic]


# ---- the signed prescription payload -----------------------------------------------------


class Guardian(Strict):
    full_name: NonEmpty
    national_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{8,15}$")] | None = None


class Patient(Strict):
    full_name: NonEmpty
    date_of_birth: date
    gender: Literal["male", "female", "other"]
    national_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    insurance_no: Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9]{13}$")] | None = None
    weight_kg: Annotated[float, Field(gt=0, le=400)] | None = None
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
    kind: Literal["c", "n", "h", "y", "t"]
    replaces: Annotated[str, Field(min_length=14, max_length=14)] | None = None
    facility_code: FacilityCode
    issued_at: AwareDatetime
    patient: Patient
    diagnoses: Annotated[list[Diagnosis], Field(min_length=1, max_length=20)]
    items: Annotated[list[PrescribedItem], Field(min_length=1, max_length=50)]
    notes: Annotated[str, Field(max_length=2000)] | None = None
    follow_up_date: date | None = None


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


class AccessLogView(BaseModel):
    at: str
    actor_kind: str
    actor_code: str
    action: str
