"""Prescribers: their registration, signing keys, password sign-in and facilities.

Reached from other contexts through `eprescribe.registry.service`, which re-exports these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import repository
from eprescribe.registry.exceptions import (
    ClientNotFound,
    InvalidClient,
    PrescriberNotAllowed,
    RegistryConflict,
)
from eprescribe.registry.models import Prescriber, PrescriberFacility, RegisteredKey
from eprescribe.registry.records import facility_record, prescriber_record, random_id
from eprescribe.registry.schemas import (
    ClientStatus,
    FacilityRecord,
    KeyPeriod,
    PrescriberCreate,
    PrescriberRecord,
)
from kit import throttle
from kit.errors import InvalidContent, Unauthorized, field_error
from kit.runtime import Runtime
from kit.security import ClientKind, Principal, SecretHasher
from kit.time import utcnow


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
    entry = _key_entry("BS" + random_id(8), key, now)
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
    # The same sequence as every other secret: counted first, per (prescriber, address) and address.
    attempt = await throttle.take_secret(
        session, runtime.settings, client_id=prescriber_id, address=address, pace=pace
    )
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
        attempt.failed()
        raise InvalidClient()
    await attempt.succeeded()
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
