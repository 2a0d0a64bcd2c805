"""Routes of the registry: client credentials and the health department's registrations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from eprescribe.registry import service
from eprescribe.registry.deps import CurrentAdmin
from eprescribe.registry.schemas import (
    ClientStatusView,
    FacilityCreate,
    FacilityCreated,
    PharmacyCreate,
    PharmacyCreated,
    PrescriberCreate,
    PrescriberCreated,
    PrescriberKey,
    PrescriberPassword,
    SecretRotated,
    TokenResponse,
)
from eprescribe.registry.service import Registrant, StatusAction
from kit.database import SessionDep
from kit.errors import ERRORS
from kit.runtime import RuntimeDep, client_address
from kit.security import ClientKind
from kit.throttle import PaceDep

router = APIRouter()


@router.post("/api/v1/auth/token", response_model=TokenResponse, tags=["credentials"], responses=ERRORS)
async def issue_token(
    pace: PaceDep,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    # Optional here so that a missing one is RFC 6749's 400 invalid_request, not a 422.
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> TokenResponse:
    """Exchange admin or facility client credentials for a bearer token (RFC 6749 4.4).

    Wrong secrets are counted per client id and per address; past the limits the answer is
    slowed, then 429 with Retry-After.
    """
    client_id, client_secret = service.token_request(grant_type, client_id, client_secret)
    kind = ClientKind.FACILITY if len(client_id) == 5 and client_id.isalnum() else ClientKind.ADMIN
    principal = await service.authenticate(
        session, runtime, kind, client_id, client_secret, address=client_address(request), pace=pace
    )
    token = runtime.tokens.issue(principal)
    return TokenResponse(access_token=token.access_token, expires_in=token.expires_in)


@router.post(
    "/api/v1/facilities", status_code=201, response_model=FacilityCreated, tags=["registry"], responses=ERRORS
)
async def create_facility(
    body: FacilityCreate, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> FacilityCreated:
    """Register a facility; its secret is shown only in this answer."""
    facility, secret = await service.register_facility(session, runtime.hasher, body)
    return FacilityCreated(facility_code=facility.facility_code, client_secret=secret)


@router.post(
    "/api/v1/prescribers",
    status_code=201,
    response_model=PrescriberCreated,
    tags=["registry"],
    responses=ERRORS,
)
async def create_prescriber(
    body: PrescriberCreate, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> PrescriberCreated:
    """Register a prescriber with the EC P-256 public key that verifies their signatures.

    An optional `password` lets the prescriber sign in through the national protocol
    (`POST /api/auth/dang-nhap-bac-si`); only its argon2id hash is stored.
    """
    prescriber = await service.register_prescriber(session, body, hasher=runtime.hasher)
    return PrescriberCreated(prescriber_id=prescriber.prescriber_id)


@router.post(
    "/api/v1/pharmacies", status_code=201, response_model=PharmacyCreated, tags=["registry"], responses=ERRORS
)
async def create_pharmacy(
    body: PharmacyCreate, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> PharmacyCreated:
    """Register a pharmacy outlet and issue its connection code and secret."""
    pharmacy, secret = await service.register_pharmacy(session, runtime.hasher, body)
    return PharmacyCreated(connection_code=pharmacy.connection_code, client_secret=secret)


@router.post(
    "/api/v1/pharmacies/{connection_code}/rotate-secret",
    response_model=SecretRotated,
    tags=["registry"],
    responses=ERRORS,
)
async def rotate_pharmacy_secret(
    connection_code: str, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> SecretRotated:
    """Issue a new secret; tokens issued under the old one fail at once."""
    pharmacy, secret = await service.rotate_pharmacy_secret(session, runtime.hasher, connection_code)
    return SecretRotated(connection_code=pharmacy.connection_code, client_secret=secret)


@router.post(
    "/api/v1/pharmacies/{connection_code}/{action}",
    response_model=ClientStatusView,
    tags=["registry"],
    responses=ERRORS,
)
async def change_pharmacy_status(
    connection_code: str, action: StatusAction, _: CurrentAdmin, session: SessionDep
) -> ClientStatusView:
    """Suspend, reinstate or revoke an outlet; its tokens stop working on the next request."""
    status = await service.change_status(session, Registrant.PHARMACY, connection_code, action)
    return ClientStatusView(connection_code=connection_code.strip().upper(), status=status)


@router.post(
    "/api/v1/facilities/{facility_code}/{action}",
    response_model=ClientStatusView,
    tags=["registry"],
    responses=ERRORS,
)
async def change_facility_status(
    facility_code: str, action: StatusAction, _: CurrentAdmin, session: SessionDep
) -> ClientStatusView:
    """Suspend, reinstate or revoke a facility; its tokens stop working on the next request."""
    status = await service.change_status(session, Registrant.FACILITY, facility_code, action)
    return ClientStatusView(connection_code=facility_code.strip().upper(), status=status)


@router.post(
    "/api/v1/prescribers/{prescriber_id}/{action}",
    response_model=ClientStatusView,
    tags=["registry"],
    responses=ERRORS,
)
async def change_prescriber_status(
    prescriber_id: str, action: StatusAction, _: CurrentAdmin, session: SessionDep
) -> ClientStatusView:
    """Suspend, reinstate or revoke a prescriber; their signatures are refused from now on."""
    status = await service.change_status(session, Registrant.PRESCRIBER, prescriber_id, action)
    return ClientStatusView(connection_code=prescriber_id.strip().upper(), status=status)


@router.put(
    "/api/v1/prescribers/{prescriber_id}/key",
    response_model=PrescriberCreated,
    tags=["registry"],
    responses=ERRORS,
)
async def replace_prescriber_key(
    prescriber_id: str, body: PrescriberKey, _: CurrentAdmin, session: SessionDep
) -> PrescriberCreated:
    """Register a prescriber's new public key (new device or browser); the old one is retired.

    New signatures made with the retired key are refused; prescriptions received while it was
    current still verify with it.
    """
    prescriber = await service.replace_prescriber_key(session, prescriber_id, body.public_jwk)
    return PrescriberCreated(prescriber_id=prescriber.prescriber_id)


@router.put(
    "/api/v1/prescribers/{prescriber_id}/password",
    response_model=PrescriberCreated,
    tags=["registry"],
    responses=ERRORS,
)
async def set_prescriber_password(
    prescriber_id: str, body: PrescriberPassword, _: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> PrescriberCreated:
    """Set the prescriber's national-protocol password; tokens issued under the old one stop working."""
    prescriber = await service.set_prescriber_password(
        session, runtime.hasher, prescriber_id, body.password.get_secret_value()
    )
    return PrescriberCreated(prescriber_id=prescriber.prescriber_id)
