"""Client credentials: the token request, the secret check behind the guessing throttle, and the
re-check of the client a token acts for on every request.

Other contexts reach these through the registry's service, which re-exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import repository
from eprescribe.registry.exceptions import InvalidClient, InvalidTokenRequest, UnsupportedGrantType
from eprescribe.registry.models import AdminClient, Facility, Pharmacy
from eprescribe.registry.schemas import AdminRecord, ClientStatus, FacilityRecord, PharmacyRecord
from kit import throttle
from kit.errors import Unauthorized
from kit.fields import unsafe_reason
from kit.runtime import Runtime
from kit.security import ClientKind, Principal

if TYPE_CHECKING:
    from kit.database import AnyRow


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
