"""Rules of the registry: who may connect, and as what. No HTTP here, and nothing commits."""

from __future__ import annotations

import csv
import io
import secrets
import string
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import repository
from eprescribe.registry.exceptions import (
    ClientNotFound,
    InvalidClient,
    InvalidTokenRequest,
    PrescriberNotAllowed,
    RegistryConflict,
    UnsupportedGrantType,
)
from eprescribe.registry.models import (
    AdminClient,
    Facility,
    Pharmacy,
    Prescriber,
    PrescriberFacility,
    RegisteredKey,
)
from eprescribe.registry.schemas import (
    AdminRecord,
    ClientStatus,
    FacilityCreate,
    FacilityRecord,
    KeyPeriod,
    PharmacyCreate,
    PharmacyKind,
    PharmacyRecord,
    PrescriberCreate,
    PrescriberRecord,
    Province,
)
from kit import throttle
from kit.errors import InvalidContent, Unauthorized, field_error
from kit.fields import unsafe_reason
from kit.runtime import Runtime
from kit.security import ClientKind, Principal, SecretHasher, new_secret
from kit.time import utcnow

if TYPE_CHECKING:
    from kit.database import AnyRow

ID_ALPHABET = string.digits + string.ascii_uppercase
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


def _random_id(length: int) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


# ---- records -------------------------------------------------------------------------------


def facility_record(facility: Facility) -> FacilityRecord:
    return FacilityRecord(facility.facility_code, facility.name, facility.province_code)


def prescriber_record(prescriber: Prescriber) -> PrescriberRecord:
    return PrescriberRecord(
        prescriber_id=prescriber.prescriber_id,
        full_name=prescriber.full_name,
        license_no=prescriber.license_no,
        public_jwk=prescriber.public_jwk,
        controlled_allowed=prescriber.controlled_allowed,
        status=prescriber.status,
    )


def pharmacy_record(pharmacy: Pharmacy) -> PharmacyRecord:
    assert pharmacy.id is not None
    return PharmacyRecord(
        id=pharmacy.id,
        connection_code=pharmacy.connection_code,
        name=pharmacy.name,
        kind=pharmacy.kind,
        province_code=pharmacy.province_code,
        address=pharmacy.address,
        latitude=pharmacy.latitude,
        longitude=pharmacy.longitude,
        controlled_licence=pharmacy.controlled_licence,
        status=pharmacy.status,
    )


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
    settings = runtime.settings
    keys = throttle.secret_subjects(settings, client_id=client_id, address=address)
    known = throttle.known_key(client_id, address)
    found, is_known = await throttle.take(session, keys, known=known)
    if found.blocked and not is_known:
        raise throttle.refuse(found)
    if found.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    client = await _client(session, kind, client_id)
    ok = await runtime.hasher.verify(client.secret_hash if client else None, secret)
    if client is None or not ok or client.status != ClientStatus.ACTIVE:
        # Counted already; a wrong secret is always answered late (gematik: delay on failure).
        pace.slow_down(settings.throttle_delay_seconds)
        raise InvalidClient()
    await throttle.give_back(session, keys, known=known, known_seconds=settings.throttle_known_pair_seconds)
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
        client_id=client_id or f"admin-{_random_id(8).lower()}",
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
            code = data.province_code + _random_id(3)
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


# ---- prescribers -----------------------------------------------------------------------------


def validate_public_jwk(jwk: dict[str, Any], loc: Sequence[str | int]) -> ECKey:
    """Accept only a public EC P-256 key: no private part, no other curve or type."""
    if "d" in jwk:
        raise InvalidContent.field(loc, "this is a private key; register only the public JWK")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise InvalidContent.field(loc, "the key must be an EC P-256 public JWK")
    try:
        key = ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")})
    except (JoseError, KeyError, ValueError, TypeError) as exc:
        raise InvalidContent.field(loc, f"not a valid EC public key: {exc}") from exc
    return key


async def register_prescriber(
    session: AsyncSession, data: PrescriberCreate, *, hasher: SecretHasher | None = None
) -> PrescriberRecord:
    """Register a prescriber at one or more facilities with the key that verifies their signatures.

    A `password` (national-protocol sign-in) is stored only as its argon2id hash; `hasher` is
    then required.
    """
    key = validate_public_jwk(data.public_jwk, ["body", "public_jwk"])
    facility_codes = sorted(set(data.facility_codes))
    known = await repository.existing_facility_codes(session, facility_codes)
    missing = [c for c in facility_codes if c not in known]
    if missing:
        raise InvalidContent(
            f"Unknown facility codes: {', '.join(missing)}",
            errors=[
                field_error(["body", "facility_codes", data.facility_codes.index(c)], "unknown facility")
                for c in missing
            ],
        )
    if await repository.prescriber_by_license(session, data.license_no) is not None:
        raise RegistryConflict(
            "A prescriber with this licence number is already registered",
            errors=[field_error(["body", "license_no"], "already registered")],
        )
    now = utcnow()
    entry = _key_entry("BS" + _random_id(8), key, now)
    prescriber = Prescriber(
        prescriber_id=entry.prescriber_id,
        full_name=data.full_name,
        license_no=data.license_no,
        public_jwk=entry.public_jwk,
        key_thumbprint=entry.thumbprint,
        controlled_allowed=data.controlled_allowed,
        created_at=now,
    )
    if data.password is not None:
        if hasher is None:
            raise ValueError("a password needs the secret hasher")
        prescriber.password_hash = await hasher.hash(data.password.get_secret_value())
    session.add(prescriber)
    await session.flush()
    session.add(entry)
    for code in facility_codes:
        session.add(PrescriberFacility(prescriber_id=prescriber.prescriber_id, facility_code=code))
    await session.flush()
    return prescriber_record(prescriber)


def _key_entry(prescriber_id: str, key: ECKey, at: datetime) -> RegisteredKey:
    """The history row of a key becoming current; its fields are also the prescriber's current key."""
    return RegisteredKey(
        prescriber_id=prescriber_id,
        thumbprint=key.thumbprint(),
        public_jwk=key.as_dict(private=False),
        registered_at=at,
    )


async def replace_prescriber_key(
    session: AsyncSession, prescriber_id: str, public_jwk: dict[str, Any]
) -> PrescriberRecord:
    """Register a new public key (lost device, new browser); the old one is retired, not forgotten.

    New signatures verify only with the new key; prescriptions received while the old one was
    current still verify with it (`prescriber_keys`). The same key again changes nothing.
    """
    # Locked: concurrent replacements take turns, so exactly one key stays current.
    prescriber = await repository.get_prescriber(session, prescriber_id.strip().upper(), for_update=True)
    if prescriber is None:
        raise ClientNotFound(f"No prescriber {prescriber_id}")
    key = validate_public_jwk(public_jwk, ["body", "public_jwk"])
    if key.thumbprint() == prescriber.key_thumbprint:
        return prescriber_record(prescriber)
    now = utcnow()
    await repository.retire_current_key(session, prescriber.prescriber_id, now)
    entry = _key_entry(prescriber.prescriber_id, key, now)
    prescriber.public_jwk, prescriber.key_thumbprint = entry.public_jwk, entry.thumbprint
    session.add(entry)
    await session.flush()
    return prescriber_record(prescriber)


async def prescriber_keys(session: AsyncSession, prescriber_ids: Sequence[str]) -> dict[str, list[KeyPeriod]]:
    """Every key each of these prescribers registered, oldest first (one query for them all)."""
    found: dict[str, list[KeyPeriod]] = {pid: [] for pid in prescriber_ids}
    for row in await repository.keys_of(session, prescriber_ids):
        found[row.prescriber_id].append(KeyPeriod(*row))
    return found


async def set_prescriber_password(
    session: AsyncSession, hasher: SecretHasher, prescriber_id: str, password: str
) -> PrescriberRecord:
    """Set the national-protocol password; the prescriber's existing tokens stop working at once."""
    prescriber = await repository.get_prescriber(session, prescriber_id.strip().upper())
    if prescriber is None:
        raise ClientNotFound(f"No prescriber {prescriber_id}")
    prescriber.password_hash = await hasher.hash(password)
    prescriber.credentials_version += 1
    await session.flush()
    return prescriber_record(prescriber)


def prescriber_principal_id(facility_code: str, prescriber_id: str) -> str:
    """The `sub` of a prescriber's token: the facility it acts for, and who it is."""
    return f"{facility_code}:{prescriber_id}"


async def authenticate_prescriber(
    session: AsyncSession,
    runtime: Runtime,
    *,
    facility_code: str,
    prescriber_id: str,
    password: str,
    address: str,
    pace: throttle.Pace,
) -> Principal:
    """Sign a prescriber in at a facility with their password, behind the same guessing throttle.

    Refused alike (401 invalid_client): unknown prescriber or facility, no password set, a wrong
    one, a prescriber or facility not active, or a prescriber not registered at that facility.
    """
    facility_code, prescriber_id = facility_code.strip().upper(), prescriber_id.strip().upper()
    settings = runtime.settings
    # The same sequence as every other secret: counted first, per (prescriber, address) and address.
    keys = throttle.secret_subjects(settings, client_id=prescriber_id, address=address)
    known = throttle.known_key(prescriber_id, address)
    found, is_known = await throttle.take(session, keys, known=known)
    if found.blocked and not is_known:
        raise throttle.refuse(found)
    if found.slowed:
        pace.slow_down(settings.throttle_delay_seconds)
    prescriber = await repository.get_prescriber(session, prescriber_id)
    ok = await runtime.hasher.verify(prescriber.password_hash if prescriber else None, password)
    facility = await repository.get_facility(session, facility_code) if ok else None
    if (
        prescriber is None
        or not ok
        or prescriber.status != ClientStatus.ACTIVE
        or facility is None
        or facility.status != ClientStatus.ACTIVE
        or not await repository.prescriber_works_at(session, prescriber_id, facility_code)
    ):
        pace.slow_down(settings.throttle_delay_seconds)
        raise InvalidClient()
    await throttle.give_back(session, keys, known=known, known_seconds=settings.throttle_known_pair_seconds)
    return Principal(
        kind=ClientKind.PRESCRIBER,
        client_id=prescriber_principal_id(facility_code, prescriber_id),
        credentials_version=prescriber.credentials_version,
    )


async def current_prescriber(
    session: AsyncSession, principal: Principal
) -> tuple[FacilityRecord, PrescriberRecord]:
    """The facility and prescriber a prescriber's token acts for, re-checked now."""
    facility_code, _, prescriber_id = principal.client_id.partition(":")
    prescriber = await repository.get_prescriber(session, prescriber_id)
    facility = await repository.get_facility(session, facility_code)
    if (
        principal.kind is not ClientKind.PRESCRIBER
        or prescriber is None
        or facility is None
        or prescriber.credentials_version != principal.credentials_version
    ):
        raise Unauthorized("These credentials were replaced or removed; sign in again")
    if prescriber.status != ClientStatus.ACTIVE or facility.status != ClientStatus.ACTIVE:
        raise Unauthorized("This prescriber or facility is not active")
    if not await repository.prescriber_works_at(session, prescriber_id, facility_code):
        raise Unauthorized(f"Prescriber {prescriber_id} is no longer registered at facility {facility_code}")
    return facility_record(facility), prescriber_record(prescriber)


async def add_prescriber_at(session: AsyncSession, facility_code: str, prescriber_id: str) -> bool:
    """Register a nationally registered prescriber at this facility; False when already there."""
    prescriber = await repository.get_prescriber(session, prescriber_id.strip().upper())
    if prescriber is None:
        raise ClientNotFound(f"No prescriber {prescriber_id} in the national registry")
    if prescriber.status == ClientStatus.REVOKED:
        raise RegistryConflict(f"Prescriber {prescriber.prescriber_id} is revoked")
    return await repository.link_prescriber(session, prescriber.prescriber_id, facility_code)


async def remove_prescriber_at(session: AsyncSession, facility_code: str, prescriber_id: str) -> None:
    """Remove a prescriber from this facility; their prescriptions stay as they are."""
    if not await repository.unlink_prescriber(session, prescriber_id.strip().upper(), facility_code):
        raise ClientNotFound(f"Prescriber {prescriber_id} is not registered at facility {facility_code}")


async def get_prescriber(session: AsyncSession, prescriber_id: str) -> PrescriberRecord | None:
    found = await repository.get_prescriber(session, prescriber_id)
    return prescriber_record(found) if found else None


async def prescriber_by_license(session: AsyncSession, license_no: str) -> PrescriberRecord | None:
    found = await repository.prescriber_by_license(session, license_no)
    return prescriber_record(found) if found else None


async def works_at(session: AsyncSession, prescriber_id: str, facility_code: str) -> bool:
    return await repository.prescriber_works_at(session, prescriber_id, facility_code)


async def signer(
    session: AsyncSession, prescriber_id: str, facility_code: str
) -> tuple[PrescriberRecord, bool] | None:
    """The prescriber a signature names, and whether they are registered at this facility."""
    row = await repository.signer_at(session, prescriber_id, facility_code)
    if row is None:
        return None
    return PrescriberRecord(*row[:6]), bool(row[6])


async def prescribers_at_facility(session: AsyncSession, facility_code: str) -> list[PrescriberRecord]:
    """Every prescriber registered at this facility, by name (the console offers the active ones)."""
    return [prescriber_record(p) for p in await repository.prescribers_at_facility(session, facility_code)]


async def active_prescriber_at(
    session: AsyncSession, facility_code: str, prescriber_id: str
) -> PrescriberRecord:
    """The prescriber a console session acts as: active and registered at its facility."""
    prescriber = await repository.get_prescriber(session, prescriber_id.strip().upper())
    if (
        prescriber is None
        or prescriber.status != ClientStatus.ACTIVE
        or not await repository.prescriber_works_at(session, prescriber.prescriber_id, facility_code)
    ):
        raise PrescriberNotAllowed(
            f"Prescriber {prescriber_id} is not an active prescriber of facility {facility_code}"
        )
    return prescriber_record(prescriber)


# ---- pharmacies ------------------------------------------------------------------------------


async def register_pharmacy(
    session: AsyncSession, hasher: SecretHasher, data: PharmacyCreate, *, connection_code: str | None = None
) -> tuple[PharmacyRecord, str]:
    """Register an outlet; `connection_code` is only chosen by hand for fixed demo data."""
    for _ in range(20):
        code = connection_code or f"{data.province_code}{KIND_PREFIX[data.kind]}{_random_id(6)}"
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
