"""Typed dependencies of the core API: who is calling, checked on every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.registry import service
from eprescribe.registry.schemas import AdminRecord, FacilityRecord
from kit.database import SessionDep, request_transaction
from kit.runtime import Runtime, authenticate, client_address
from kit.security import CORE_CLIENTS, ClientKind

# Declares the token in the OpenAPI schema; `kit.runtime.authenticate` reads and refuses it.
Documented = Annotated[str | None, Security(CORE_CLIENTS)]


async def _current_admin(request: Request, _token: Documented, session: SessionDep) -> AdminRecord:
    _runtime, principal = authenticate(request, ClientKind.ADMIN)
    return await service.current_admin(session, principal)


CurrentAdmin = Annotated[AdminRecord, Depends(_current_admin)]


@dataclass(frozen=True, slots=True)
class FacilityCall:
    """One facility's request: its transaction, the facility re-checked (suspended or revoked
    refuses it) and the address it came from."""

    session: AsyncSession
    runtime: Runtime
    facility: FacilityRecord
    address: str


async def _facility_call(request: Request, _token: Documented) -> AsyncIterator[FacilityCall]:
    # One dependency in place of four (session, runtime, the facility, which took both, and the
    # token): FastAPI solves each on every request, and submissions are the core's traffic.
    runtime, principal = authenticate(request, ClientKind.FACILITY)
    async with request_transaction(runtime.database) as session:
        facility = await service.current_facility(session, principal)
        yield FacilityCall(session, runtime, facility, client_address(request))


# scope="function": the transaction commits before the response is sent (kit.database.SessionDep).
FacilityCallDep = Annotated[FacilityCall, Depends(_facility_call, scope="function")]
