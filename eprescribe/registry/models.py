"""Tables of the registry: health-department clients, facilities, prescribers and pharmacies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, String, text
from sqlmodel import Field, SQLModel

from eprescribe.registry.schemas import ClientStatus
from kit.database import UTCDateTime, bigint_pk


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
    # argon2id of the national-protocol sign-in password (dang-nhap-bac-si); None: cannot sign in.
    password_hash: str | None = Field(default=None, max_length=200)
    # Bumped when the password changes, so the prescriber's existing tokens fail at once.
    credentials_version: int = Field(default=1, sa_column_kwargs={"server_default": text("1")})


class RegisteredKey(SQLModel, table=True):
    """Every key a prescriber ever registered, and when it was current: old signatures verify later.

    The current key is also on `Prescriber` (one read on the submission path); this history is
    what `check_stored` reads, choosing the key current when each prescription was received.
    """

    __tablename__ = "prescriber_key"
    __table_args__ = (
        Index("ix_prescriber_key_prescriber_id_registered_at", "prescriber_id", "registered_at"),
        # At most one current key per prescriber, whatever the concurrency of replacements.
        Index(
            "uq_prescriber_key_current",
            "prescriber_id",
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
            sqlite_where=text("retired_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=bigint_pk())
    prescriber_id: str = Field(
        sa_column=Column(String(16), ForeignKey("prescriber.prescriber_id"), nullable=False)
    )
    thumbprint: str = Field(max_length=64)
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    registered_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # None while current; a prescription received from this instant on is another key's.
    retired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


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
    __table_args__ = (
        # Suspended and revoked outlets, looked up on every public query: a handful among 62,000.
        Index(
            "ix_pharmacy_not_active",
            "id",
            postgresql_where=text("status <> 'active'"),
            sqlite_where=text("status <> 'active'"),
        ),
    )

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
