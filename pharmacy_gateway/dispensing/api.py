"""Routes of the pharmacy gateway: its token, lookups, dispensing, voids and history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import TokenResponse
from kit.database import SessionDep
from kit.errors import ERRORS
from kit.fields import PageOffset, SafeDate, SafeInstant
from kit.runtime import RuntimeDep, client_address
from kit.throttle import PaceDep
from kit.time import start_of_vn_day
from kit.web import model_response
from pharmacy_gateway.deps import PharmacyCallDep
from pharmacy_gateway.dispensing import service
from pharmacy_gateway.dispensing.schemas import (
    DispenseCreate,
    DispenseCreated,
    DispensePage,
    DispenseVoided,
    GatewayPrescription,
    VoidRequest,
)

router = APIRouter(prefix="/gateway/v1", tags=["pharmacy gateway"])

# A day given without a time is a calendar day in Vietnam.
Instant = SafeInstant | SafeDate


@router.post("/auth/token", response_model=TokenResponse, responses=ERRORS)
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
    """Exchange a pharmacy's connection code (`client_id`) and secret for a bearer token."""
    client_id, client_secret = registry.token_request(grant_type, client_id, client_secret)
    token = await service.issue_token(
        session,
        runtime,
        client_id=client_id,
        client_secret=client_secret,
        address=client_address(request),
        pace=pace,
    )
    return TokenResponse(access_token=token.access_token, expires_in=token.expires_in)


@router.get("/prescriptions/{code}", response_model=GatewayPrescription, responses=ERRORS)
async def lookup_prescription(code: str, call: PharmacyCallDep) -> Response:
    """Read a prescription by its typed code or the full text of its QR code (case-insensitive)."""
    found = await service.lookup(
        call.session, call.runtime, pharmacy=call.pharmacy, text=code, address=call.address, pace=call.pace
    )
    return model_response(found)


@router.post(
    "/prescriptions/{code}/dispenses", status_code=201, response_model=DispenseCreated, responses=ERRORS
)
async def dispense(
    code: str,
    body: DispenseCreate,
    call: PharmacyCallDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Report a sale: all lines or none; a retry with the same Idempotency-Key gets the first answer."""
    outcome = await service.dispense(
        call.session,
        call.runtime,
        pharmacy=call.pharmacy,
        code_text=code,
        body=body,
        idempotency_key=idempotency_key,
        address=call.address,
        pace=call.pace,
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.post("/dispenses/{dispense_id}/void", response_model=DispenseVoided, responses=ERRORS)
async def void_dispense(
    dispense_id: str,
    body: VoidRequest,
    call: PharmacyCallDep,
) -> DispenseVoided:
    """Void this pharmacy's own dispense within the void window; the quantities return."""
    return await service.void(
        call.session,
        call.runtime,
        pharmacy=call.pharmacy,
        dispense_id=dispense_id,
        reason=body.reason,
        address=call.address,
    )


def _start(value: Instant | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return start_of_vn_day(value)


def _end(value: Instant | None) -> datetime | None:
    # A day as the upper bound includes that whole day.
    if value is None or isinstance(value, datetime):
        return value
    return start_of_vn_day(value + timedelta(days=1))


@router.get("/dispenses", response_model=DispensePage, responses=ERRORS)
async def list_dispenses(
    call: PharmacyCallDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[PageOffset, Query()] = 0,
    since: Annotated[
        Instant | None, Query(alias="from", description="YYYY-MM-DD (Vietnam day) or an ISO 8601 instant")
    ] = None,
    until: Annotated[
        Instant | None, Query(alias="to", description="YYYY-MM-DD (that whole day) or an instant (excluded)")
    ] = None,
) -> DispensePage:
    """This pharmacy's own dispenses, newest first, with their lines; voided ones are flagged."""
    return await service.history(
        call.session,
        pharmacy=call.pharmacy,
        since=_start(since),
        until=_end(until),
        limit=limit,
        offset=offset,
    )
