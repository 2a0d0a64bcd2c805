"""Rules of the registry: who may connect, and as what. No HTTP here, and nothing commits."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import repository
from eprescribe.registry.exceptions import (
    ClientNotFound,
    InvalidClient,
    InvalidTokenRequest,
    RegistryConflict,
    UnsupportedGrantType,
)
from eprescribe.registry.models import (
    AdminClient,
    Facility,
    Pharmacy,
    Prescriber,
)
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
from kit import throttle
from kit.errors import Unauthorized, field_error
from kit.fields import unsafe_reason
from kit.runtime import Runtime
from kit.security import ClientKind, Principal, SecretHasher, new_secret
from kit.time import utcnow

if TYPE_CHECKING:
    from kit.database import AnyRow

# Prescribers live in their own module (eprescribe/registry/prescribers.py); other contexts
# reach them here, through the registry's service.
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


# ---- credentials --------------------------------------------------------------------------


async def _client(
    session: AsyncSession, kind: ClientKind, client_id: str
) -> AdminClient | Facility | Pharmacy | None:
    if kind is ClientKind.ADMIN:
        return await repository.get_admin(session, client_id)
    if kind is ClientKind.FACILITY:
        return await repository.get_facility(session, client_id.upper())
    return await repository.get_pharmacy(session, client_id.upper())


def _client_id(client: AdminClient | Facility | Pharmacy) -> str:
    if isinstance(client, AdminClient):
        return client.client_id
    if isinstance(client, Facility):
        return client.facility_code
    return client.connection_code


async def authenticate(
    session: AsyncSession,
    runtime: Runtime,
    kind: ClientKind,
    client_id: str,
    secret: str,
    *,
    address: str,
    pace: throttle.Pace,
) -> Principal:
    """Check client credentials behind the guessing throttle, per (client id, address) and address.

    The attempt is counted before the secret is checked (one atomic statement), so parallel
    guesses cannot slip past the limit; past it the answer is 429 with Retry-After unless this
    client signed in from this address lately. A right secret gives its attempt back: the owner
    is never refused for a stranger's guesses from elsewhere.
    """
    client_id = client_id.strip()
    attempt = await throttle.take_secret(
        session, runtime.settings, client_id=client_id, address=address, pace=pace
    )
    client = await _client(session, kind, client_id)
    ok = await runtime.hasher.verify(client.secret_hash if client else None, secret)
    if client is None or not ok or client.status != ClientStatus.ACTIVE:
        attempt.failed()
        raise InvalidClient()
    await attempt.succeeded()
    return Principal(kind=kind, client_id=_client_id(client), credentials_version=client.credentials_version)


CurrentT = TypeVar("CurrentT", bound="AnyRow | AdminClient")


def _check_current(found: CurrentT | None, principal: Principal, expected: ClientKind) -> CurrentT:
    """Refuse a client whose credentials were replaced or who is no longer active."""
    if (
        principal.kind is not expected
        or found is None
        or found.credentials_version != principal.credentials_version
    ):
        raise Unauthorized("These credentials were replaced or removed; request a new token")
    if found.status != ClientStatus.ACTIVE:
        raise Unauthorized(f"This client is {found.status}")
    return found


async def current_admin(session: AsyncSession, principal: Principal) -> AdminRecord:
    """The health-department client a token acts for, re-checked now."""
    found = (
        await repository.get_admin(session, principal.client_id)
        if principal.kind is ClientKind.ADMIN
        else None
    )
    client = _check_current(found, principal, ClientKind.ADMIN)
    return AdminRecord(client.client_id, client.name)


async def current_facility(session: AsyncSession, principal: Principal) -> FacilityRecord:
    """The facility a token or console session acts for, re-checked now (one round trip)."""
    row = _check_current(
        await repository.facility_row(session, principal.client_id), principal, ClientKind.FACILITY
    )
    return FacilityRecord(row.facility_code, row.name, row.province_code)


async def current_pharmacy(session: AsyncSession, principal: Principal) -> PharmacyRecord:
    """The pharmacy a token or console session acts for, re-checked now (one round trip)."""
    row = _check_current(
        await repository.pharmacy_row(session, principal.client_id), principal, ClientKind.PHARMACY
    )
    return PharmacyRecord(
        id=row.id,
        connection_code=row.connection_code,
        name=row.name,
        kind=row.kind,
        province_code=row.province_code,
        address=row.address,
        latitude=row.latitude,
        longitude=row.longitude,
        controlled_licence=row.controlled_licence,
        status=row.status,
    )


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


# ---- token requests (RFC 6749 section 4.4) --------------------------------------------------

TOKEN_FIELD_LIMITS = {"client_id": 200, "client_secret": 500}


def token_request(
    grant_type: str | None, client_id: str | None, client_secret: str | None
) -> tuple[str, str]:
    """The client id and secret of a well-formed client-credentials request; else the RFC's 400.

    Wrong credentials stay 401 `invalid_client` (the contract); a request the server cannot read
    is 400 `invalid_request`, another grant 400 `unsupported_grant_type`, both with
    `error_description` (RFC 6749 section 5.2).
    """
    given = {"grant_type": grant_type, "client_id": client_id, "client_secret": client_secret}
    for name, value in given.items():
        if value is None or value == "":
            raise InvalidTokenRequest(f"The request is missing {name}")
        reason = unsafe_reason(value)
        if reason is not None:
            raise InvalidTokenRequest(f"{name} {reason}")
        if len(value) > TOKEN_FIELD_LIMITS.get(name, 100):
            raise InvalidTokenRequest(f"{name} is longer than {TOKEN_FIELD_LIMITS.get(name, 100)} characters")
    if grant_type != "client_credentials":
        raise UnsupportedGrantType()
    assert client_id is not None and client_secret is not None
    return client_id, client_secret
