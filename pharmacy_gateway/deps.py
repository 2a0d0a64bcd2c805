"""The gateway's one dependency: the calling pharmacy, re-checked on every request, in its transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit import throttle
from kit.database import request_transaction
from kit.runtime import Runtime, authenticate, client_address
from kit.security import PHARMACY_CLIENTS, ClientKind


@dataclass(frozen=True, slots=True)
class PharmacyCall:
    """One pharmacy's request: its transaction, the pharmacy re-checked (suspended or revoked
    refuses it), the pace of its answer and the address it came from."""

    session: AsyncSession
    runtime: Runtime
    pharmacy: PharmacyRecord
    pace: throttle.Pace
    address: str


async def _pharmacy_call(
    request: Request,
    # Declares the token in the OpenAPI schema; `authenticate` reads and refuses it.
    _token: Annotated[str | None, Security(PHARMACY_CLIENTS)],
) -> AsyncIterator[PharmacyCall]:
    # One dependency in place of five (session, runtime, pharmacy, pace, request): FastAPI
    # solves each dependency on every request, and these routes carry the pharmacies' traffic.
    runtime, principal = authenticate(request, ClientKind.PHARMACY)
    async with request_transaction(runtime.database) as session:
        pace = throttle.pace_for(session)
        pharmacy = await registry.current_pharmacy(session, principal)
        yield PharmacyCall(session, runtime, pharmacy, pace, client_address(request))


# scope="function": the transaction commits before the response is sent (kit.database.SessionDep).
PharmacyCallDep = Annotated[PharmacyCall, Depends(_pharmacy_call, scope="function")]
