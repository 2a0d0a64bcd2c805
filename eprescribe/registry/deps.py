"""Typed dependencies of the core API: who is calling, checked on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security

from eprescribe.registry import service
from eprescribe.registry.schemas import AdminRecord, FacilityRecord
from kit import observability
from kit.database import SessionDep
from kit.runtime import RuntimeDep
from kit.security import CORE_CLIENTS, ClientKind, bearer_token

# Declares the token in the OpenAPI schema; `bearer_token` reads and refuses it.
Documented = Annotated[str | None, Security(CORE_CLIENTS)]


async def _current_admin(
    request: Request, _token: Documented, session: SessionDep, runtime: RuntimeDep
) -> AdminRecord:
    principal = runtime.tokens.verify(bearer_token(request), expected=ClientKind.ADMIN)
    observability.note_client(principal.kind, principal.client_id)
    return await service.current_admin(session, principal)


async def _current_facility(
    request: Request, _token: Documented, session: SessionDep, runtime: RuntimeDep
) -> FacilityRecord:
    principal = runtime.tokens.verify(bearer_token(request), expected=ClientKind.FACILITY)
    observability.note_client(principal.kind, principal.client_id)
    return await service.current_facility(session, principal)


CurrentAdmin = Annotated[AdminRecord, Depends(_current_admin)]
CurrentFacility = Annotated[FacilityRecord, Depends(_current_facility)]
