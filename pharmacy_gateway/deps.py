"""Typed dependencies of the gateway: the calling pharmacy, re-checked on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security

from eprescribe.registry import service as registry
from eprescribe.registry.schemas import PharmacyRecord
from kit import observability
from kit.database import SessionDep
from kit.runtime import RuntimeDep
from kit.security import PHARMACY_CLIENTS, ClientKind, bearer_token


async def _current_pharmacy(
    request: Request,
    # Declares the token in the OpenAPI schema; `bearer_token` reads and refuses it.
    _token: Annotated[str | None, Security(PHARMACY_CLIENTS)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> PharmacyRecord:
    principal = runtime.tokens.verify(bearer_token(request), expected=ClientKind.PHARMACY)
    observability.note_client(principal.kind, principal.client_id)
    return await registry.current_pharmacy(session, principal)


CurrentPharmacy = Annotated[PharmacyRecord, Depends(_current_pharmacy)]
