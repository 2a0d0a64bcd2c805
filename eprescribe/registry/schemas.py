"""Bodies of the registry API, and the records of clients other modules receive from its service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr

from kit.fields import NonEmpty, PersonName, Strict
from kit.text import vietnamese_sort_key


class ClientStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class PharmacyKind(StrEnum):
    PHARMACY = "pharmacy"
    DRUGSTORE = "drugstore"
    CABINET = "cabinet"


FacilityCode = Annotated[str, Field(pattern=r"^[0-9A-Z]{5}$", examples=["01001"])]
ProvinceCode = Annotated[str, Field(pattern=r"^[0-9]{2}$", examples=["01"])]
# At least 10 characters: it guards a signing identity, and the throttle alone is not enough.
Password = Annotated[SecretStr, Field(min_length=10, max_length=256)]


# ---- credentials -------------------------------------------------------------------------


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


# ---- registration ------------------------------------------------------------------------


class FacilityCreate(Strict):
    name: NonEmpty
    province_code: ProvinceCode
    facility_code: FacilityCode | None = None


class FacilityCreated(BaseModel):
    facility_code: str
    client_secret: str


class PrescriberCreate(Strict):
    full_name: PersonName
    license_no: Annotated[str, Field(min_length=3, max_length=64)]
    facility_codes: Annotated[list[FacilityCode], Field(min_length=1, max_length=50)]
    public_jwk: dict[str, Any]
    controlled_allowed: bool = False
    # Optional: lets the prescriber sign in through the national protocol (dang-nhap-bac-si).
    password: Password | None = None


class PrescriberKey(Strict):
    public_jwk: dict[str, Any]


class PrescriberCreated(BaseModel):
    prescriber_id: str


class PrescriberPassword(Strict):
    password: Password


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


# ---- records handed to other modules (never the tables themselves) -------------------------


@dataclass(frozen=True, slots=True)
class AdminRecord:
    client_id: str
    name: str


@dataclass(frozen=True, slots=True)
class FacilityRecord:
    facility_code: str
    name: str
    province_code: str


@dataclass(frozen=True, slots=True)
class PrescriberRecord:
    prescriber_id: str
    full_name: str
    license_no: str
    public_jwk: dict[str, Any]
    controlled_allowed: bool
    status: str


@dataclass(frozen=True, slots=True)
class KeyPeriod:
    """A key a prescriber registered and when it was current: [registered_at, retired_at)."""

    prescriber_id: str
    thumbprint: str
    public_jwk: dict[str, Any]
    registered_at: datetime
    retired_at: datetime | None

    def was_current(self, at: datetime) -> bool:
        return self.registered_at <= at and (self.retired_at is None or at < self.retired_at)


@dataclass(frozen=True, slots=True)
class PharmacyRecord:
    id: int
    connection_code: str
    name: str
    kind: str
    province_code: str
    address: str
    latitude: float | None
    longitude: float | None
    controlled_licence: bool
    status: str


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    name_vi: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi

    def sort_key(self, lang: str) -> tuple[tuple[int, ...], tuple[int, ...], str]:
        """Dictionary order of the name, as a list of provinces reads (Hồ Chí Minh among the H)."""
        name = self.name(lang)
        for prefix in ("Thành phố ", "Tỉnh ", "City of "):
            name = name.removeprefix(prefix)
        return vietnamese_sort_key(name)
