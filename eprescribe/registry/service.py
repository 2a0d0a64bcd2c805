"""Rules of the registry: who may connect, and as what. No HTTP here, and nothing commits."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import repository
from eprescribe.registry.credentials import (
    TOKEN_FIELD_LIMITS,
    authenticate,
    current_admin,
    current_facility,
    current_pharmacy,
    token_request,
)
from eprescribe.registry.exceptions import ClientNotFound, RegistryConflict
from eprescribe.registry.models import AdminClient, Facility, Pharmacy, Prescriber
from eprescribe.registry.prescribers import (
    active_prescriber_at,
    add_prescriber_at,
    authenticate_prescriber,
    current_prescriber,
    get_prescriber,
    prescriber_by_license,
    prescriber_keys,
    prescriber_principal_id,
    prescribers_at_facility,
    register_prescriber,
    remove_prescriber_at,
    replace_prescriber_key,
    set_prescriber_password,
    signer,
    validate_public_jwk,
    works_at,
)
from eprescribe.registry.records import facility_record, pharmacy_record, random_id
from eprescribe.registry.schemas import (
    AdminRecord,
    ClientStatus,
    FacilityCreate,
    FacilityRecord,
    PharmacyCreate,
    PharmacyKind,
    PharmacyRecord,
    Province,
)
from kit.errors import field_error
from kit.security import SecretHasher, new_secret
from kit.time import utcnow

# Prescribers and client credentials live in modules of their own (prescribers.py,
# credentials.py); other contexts reach them here, through the registry's service.
__all__ = [
    "KIND_PREFIX",
    "TOKEN_FIELD_LIMITS",
    "TRANSITIONS",
    "Registrant",
    "StatusAction",
    "active_prescriber_at",
    "add_prescriber_at",
    "admin_exists",
    "authenticate",
    "authenticate_prescriber",
    "change_status",
    "create_admin_client",
    "current_admin",
    "current_facility",
    "current_pharmacy",
    "current_prescriber",
    "facilities_by_codes",
    "get_facility",
    "get_pharmacy",
    "get_prescriber",
    "inactive_pharmacy_ids",
    "inactive_pharmacy_ids_query",
    "pharmacies_by_codes",
    "pharmacies_by_ids",
    "pharmacies_with_code_prefix",
    "pharmacy_from_row",
    "pharmacy_records_query",
    "prescriber_by_license",
    "prescriber_keys",
    "prescriber_principal_id",
    "prescribers_at_facility",
    "provinces",
    "register_facility",
    "register_pharmacy",
    "register_prescriber",
    "register_synthetic_pharmacies",
    "remove_prescriber_at",
    "replace_prescriber_key",
    "reset_admin_secret",
    "reset_facility_secret",
    "rotate_pharmacy_secret",
    "set_prescriber_password",
    "signer",
    "token_request",
    "validate_public_jwk",
    "works_at",
]

KIND_PREFIX = {PharmacyKind.PHARMACY: "NT", PharmacyKind.DRUGSTORE: "QT", PharmacyKind.CABINET: "TT"}


class Registrant(StrEnum):
    """The registry entries whose status the health department changes."""

    FACILITY = "facility"
    PRESCRIBER = "prescriber"
    PHARMACY = "pharmacy"


class StatusAction(StrEnum):
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    REVOKE = "revoke"


TRANSITIONS = {
    StatusAction.SUSPEND: ({ClientStatus.ACTIVE}, ClientStatus.SUSPENDED),
    StatusAction.REINSTATE: ({ClientStatus.SUSPENDED}, ClientStatus.ACTIVE),
    StatusAction.REVOKE: ({ClientStatus.ACTIVE, ClientStatus.SUSPENDED}, ClientStatus.REVOKED),
}


# ---- health-department clients --------------------------------------------------------------


async def create_admin_client(
    session: AsyncSession,
    hasher: SecretHasher,
    *,
    name: str,
    client_id: str | None = None,
    secret: str | None = None,
) -> tuple[AdminRecord, str]:
    """Create a health-department client; return it with its secret (shown once)."""
    secret = secret or new_secret()
    client = AdminClient(
        client_id=client_id or f"admin-{random_id(8).lower()}",
        name=name,
        secret_hash=await hasher.hash(secret),
        created_at=utcnow(),
    )
    session.add(client)
    await session.flush()
    return AdminRecord(client.client_id, client.name), secret


async def admin_exists(session: AsyncSession, client_id: str) -> bool:
    return await repository.get_admin(session, client_id) is not None


async def reset_admin_secret(
    session: AsyncSession, hasher: SecretHasher, client_id: str, secret: str
) -> None:
    client = await repository.get_admin(session, client_id)
    if client is None:
        raise ClientNotFound(f"No admin client {client_id}")
    client.secret_hash = await hasher.hash(secret)
    client.credentials_version += 1
    await session.flush()


# ---- facilities ------------------------------------------------------------------------------


async def register_facility(
    session: AsyncSession, hasher: SecretHasher, data: FacilityCreate
) -> tuple[FacilityRecord, str]:
    """Register a facility under a given or a drawn code; return it with its secret (shown once)."""
    if data.facility_code is not None:
        code = data.facility_code
        if await repository.get_facility(session, code) is not None:
            raise RegistryConflict(
                f"Facility {code} is already registered",
                errors=[field_error(["body", "facility_code"], "already registered")],
            )
    else:
        for _ in range(20):
            code = data.province_code + random_id(3)
            if await repository.get_facility(session, code) is None:
                break
        else:  # pragma: no cover - 46,656 codes per province
            raise RegistryConflict("No free facility code left in this province")
    secret = new_secret()
    facility = Facility(
        facility_code=code,
        name=data.name,
        province_code=data.province_code,
        secret_hash=await hasher.hash(secret),
        created_at=utcnow(),
    )
    session.add(facility)
    await session.flush()
    return facility_record(facility), secret


async def get_facility(session: AsyncSession, facility_code: str) -> FacilityRecord | None:
    found = await repository.get_facility(session, facility_code.strip().upper())
    return facility_record(found) if found else None


async def facilities_by_codes(session: AsyncSession, codes: Sequence[str]) -> dict[str, FacilityRecord]:
    return {f.facility_code: facility_record(f) for f in await repository.facilities_by_codes(session, codes)}


async def reset_facility_secret(session: AsyncSession, hasher: SecretHasher, facility_code: str) -> str:
    """Issue a new secret; tokens and console sessions under the old one stop working at once."""
    facility = await repository.get_facility(session, facility_code)
    if facility is None:
        raise ClientNotFound(f"No facility {facility_code}")
    secret = new_secret()
    facility.secret_hash = await hasher.hash(secret)
    facility.credentials_version += 1
    await session.flush()
    return secret


# ---- pharmacies ------------------------------------------------------------------------------


async def register_pharmacy(
    session: AsyncSession, hasher: SecretHasher, data: PharmacyCreate, *, connection_code: str | None = None
) -> tuple[PharmacyRecord, str]:
    """Register an outlet; `connection_code` is only chosen by hand for fixed demo data."""
    for _ in range(20):
        code = connection_code or f"{data.province_code}{KIND_PREFIX[data.kind]}{random_id(6)}"
        if await repository.get_pharmacy(session, code) is None:
            break
        if connection_code:
            raise RegistryConflict(f"Connection code {connection_code} is taken")
    else:  # pragma: no cover
        raise RegistryConflict("Could not allocate a connection code")
    secret = new_secret()
    pharmacy = Pharmacy(
        connection_code=code,
        name=data.name,
        kind=data.kind,
        province_code=data.province_code,
        address=data.address,
        latitude=data.latitude,
        longitude=data.longitude,
        controlled_licence=data.controlled_licence,
        secret_hash=await hasher.hash(secret),
        created_at=utcnow(),
    )
    session.add(pharmacy)
    await session.flush()
    return pharmacy_record(pharmacy), secret


async def register_synthetic_pharmacies(
    session: AsyncSession, hasher: SecretHasher, outlets: Sequence[tuple[str, PharmacyCreate]]
) -> None:
    """Register many synthetic outlets at once (demo and bench data); nobody can log in as them.

    One random secret, hashed once and never shown, is shared: hashing thousands of secrets
    would take minutes and these outlets never authenticate.
    """
    secret_hash = await hasher.hash(new_secret())
    now = utcnow()
    rows: list[dict[str, object]] = [
        {
            "connection_code": code.upper(),
            "name": data.name,
            "kind": str(data.kind),
            "province_code": data.province_code,
            "address": data.address,
            "latitude": data.latitude,
            "longitude": data.longitude,
            "controlled_licence": data.controlled_licence,
            "secret_hash": secret_hash,
            "status": ClientStatus.ACTIVE.value,
            "credentials_version": 1,
            "created_at": now,
        }
        for code, data in outlets
    ]
    for start in range(0, len(rows), 1000):
        await repository.insert_pharmacies(session, rows[start : start + 1000])


async def get_pharmacy(session: AsyncSession, connection_code: str) -> PharmacyRecord | None:
    found = await repository.get_pharmacy(session, connection_code.strip().upper())
    return pharmacy_record(found) if found else None


async def pharmacies_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, PharmacyRecord]:
    return {row[0]: PharmacyRecord(*row) for row in await repository.pharmacy_records_by_ids(session, ids)}


def pharmacy_records_query() -> Select[*tuple[Any, ...]]:
    """Every outlet's record columns, id first, to join into another context's query (one object)."""
    return repository.PHARMACY_RECORDS


def pharmacy_from_row(row: Sequence[Any]) -> PharmacyRecord:
    """The record of a row of `pharmacy_records_query()`."""
    return PharmacyRecord(*row)


async def pharmacies_by_codes(session: AsyncSession, codes: Sequence[str]) -> dict[str, PharmacyRecord]:
    found = await repository.pharmacies_by_codes(session, codes)
    return {p.connection_code: pharmacy_record(p) for p in found}


async def pharmacies_with_code_prefix(session: AsyncSession, prefix: str) -> list[PharmacyRecord]:
    found = await repository.pharmacies_with_code_prefix(session, prefix.upper())
    return [pharmacy_record(p) for p in found]


def inactive_pharmacy_ids_query() -> Select[Any]:
    """A subquery of suspended or revoked outlets (a small set) that the public must not see."""
    return repository.inactive_pharmacy_ids_query()


async def inactive_pharmacy_ids(session: AsyncSession, *, limit: int) -> list[int]:
    """Up to `limit` suspended or revoked outlets (a partial index keeps this instant)."""
    return await repository.inactive_pharmacy_ids(session, limit)


async def rotate_pharmacy_secret(
    session: AsyncSession, hasher: SecretHasher, connection_code: str
) -> tuple[PharmacyRecord, str]:
    """Issue a new secret; tokens issued under the old one stop working at once."""
    pharmacy = await repository.get_pharmacy(session, connection_code.upper())
    if pharmacy is None:
        raise ClientNotFound(f"No pharmacy with connection code {connection_code}")
    if pharmacy.status == ClientStatus.REVOKED:
        raise RegistryConflict("A revoked pharmacy cannot get a new secret")
    secret = new_secret()
    pharmacy.secret_hash = await hasher.hash(secret)
    pharmacy.credentials_version += 1
    await session.flush()
    return pharmacy_record(pharmacy), secret


# ---- status ----------------------------------------------------------------------------------


async def change_status(
    session: AsyncSession, registrant: Registrant, code: str, action: StatusAction
) -> ClientStatus:
    """Suspend, reinstate or revoke a facility, prescriber or pharmacy; effective at once."""
    code = code.strip().upper()
    entry: Facility | Prescriber | Pharmacy | None
    if registrant is Registrant.FACILITY:
        entry = await repository.get_facility(session, code)
    elif registrant is Registrant.PRESCRIBER:
        entry = await repository.get_prescriber(session, code)
    else:
        entry = await repository.get_pharmacy(session, code)
    if entry is None:
        raise ClientNotFound(f"No {registrant} {code}")
    allowed_from, target = TRANSITIONS[action]
    if entry.status not in allowed_from:
        raise RegistryConflict(f"A {entry.status} {registrant} cannot be {target}")
    entry.status = target
    await session.flush()
    return target


# ---- reference data --------------------------------------------------------------------------


@cache
def provinces() -> dict[str, Province]:
    """Provinces by code (read once per process)."""
    source = resources.files("eprescribe.registry") / "data" / "provinces.csv"
    rows = csv.DictReader(io.StringIO(source.read_text(encoding="utf-8-sig")))
    return {r["province_code"]: Province(r["province_code"], r["name_vi"], r["name_en"]) for r in rows}
